public import Foundation
public import TriplineCore
import Synchronization

/// Fetches what SNS verification needs from AWS: signing certificates (cached) and subscription confirmations.
/// Only `https://sns.<region>.amazonaws.com[.cn]/…` is ever fetched.
public final class AWSMessageVerifier: Sendable {
    /// Performs an HTTPS GET and returns the status and body. The server gives an HTTP client; tests give a fake.
    public typealias Fetch = @Sendable (_ url: URL) async throws -> (status: Int, body: [UInt8])

    let fetch: Fetch
    let cache = Mutex<[String: SigningCertificate]>([:])
    let pinned: [String: SigningCertificate]
    let maximumCached: Int

    /// Creates a verifier.
    /// - Parameters:
    ///   - fetch: How to GET an AWS URL.
    ///   - pinned: Certificates known in advance, by file name (the last path component of their SigningCertURL,
    ///     e.g. `SimpleNotificationService-….pem`): used instead of fetching, for networks without access to AWS
    ///     and for tests. The URL must still be an SNS URL.
    public init(fetch: @escaping Fetch, pinned: [String: SigningCertificate] = [:], maximumCached: Int = 64) {
        self.fetch = fetch
        self.pinned = pinned
        self.maximumCached = maximumCached
    }

    /// Reads every `*.pem` of `folder` as pinned certificates.
    /// - Throws: A ``TriplineError`` naming a file that is not a certificate.
    public static func pinnedCertificates(folder: String) throws(TriplineError) -> [String: SigningCertificate] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { throw TriplineError(.io, "cannot read the folder \(folder)") }
        var certificates: [String: SigningCertificate] = [:]
        for name in names where name.hasSuffix(".pem") {
            let path = (folder as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else { throw TriplineError(.io, "cannot read \(path)") }
            do {
                certificates[name] = try SigningCertificate(pem: [UInt8](data))
            } catch {
                throw TriplineError(.io, "\(path): \(error.description)")
            }
        }
        return certificates
    }

    /// Whether `text` is an https URL on an SNS endpoint host (`sns.<region>.amazonaws.com` or `.amazonaws.com.cn`),
    /// optionally with a path ending in `.pem`.
    public static func isSNSURL(_ text: String, certificate: Bool) -> Bool {
        guard let components = URLComponents(string: text), components.scheme == "https", let host = components.host?.lowercased(),
            components.port == nil || components.port == 443, components.user == nil, components.password == nil
        else { return false }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let isAWS = (labels.count == 4 && labels[2] == "amazonaws" && labels[3] == "com") || (labels.count == 5 && labels[2] == "amazonaws" && labels[3] == "com" && labels[4] == "cn")
        guard isAWS, labels[0] == "sns", !labels[1].isEmpty,
            labels[1].utf8.allSatisfy({ ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") })
        else { return false }
        return !certificate || components.path.hasSuffix(".pem")
    }

    /// Whether a certificate URL names an SNS signing certificate (`/SimpleNotificationService-<hex>.pem`) on the SNS
    /// endpoint of the topic's own region.
    public static func isSigningCertificateURL(_ url: URL, topicArn: String) -> Bool {
        let name = url.lastPathComponent
        guard url.pathComponents.count == 2, name.hasPrefix("SimpleNotificationService-"), name.hasSuffix(".pem") else { return false }
        let digits = name.dropFirst("SimpleNotificationService-".count).dropLast(4)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ ByteEncoding.nibble($0) != nil }) else { return false }
        let arn = topicArn.split(separator: ":", omittingEmptySubsequences: false)
        guard arn.count >= 6, arn[0] == "arn", arn[2] == "sns", let host = url.host?.lowercased() else { return false }
        return host.split(separator: ".").dropFirst().first.map { $0 == arn[3] } ?? false
    }

    /// The certificate at `url` for a message of `topicArn`, fetched once and then cached.
    func certificate(at url: String, topicArn: String) async throws(WebhookRejection) -> SigningCertificate {
        guard Self.isSNSURL(url, certificate: true), let parsed = URL(string: url), Self.isSigningCertificateURL(parsed, topicArn: topicArn) else {
            throw .unauthorized("bad_certificate_url", "SigningCertURL is not an SNS signing certificate on the topic's regional endpoint")
        }
        if let certificate = pinned[parsed.lastPathComponent] { return certificate }
        if let cached = cache.withLock({ $0[url] }) { return cached }
        let response: (status: Int, body: [UInt8])
        do {
            response = try await fetch(parsed)
        } catch {
            throw WebhookRejection(503, "certificate_unavailable", "the signing certificate could not be fetched; retry later")
        }
        guard response.status == 200 else { throw WebhookRejection(503, "certificate_unavailable", "the signing certificate could not be fetched; retry later") }
        let certificate: SigningCertificate
        do {
            certificate = try SigningCertificate(pem: response.body)
        } catch {
            throw .unauthorized("bad_certificate", "SigningCertURL did not serve a certificate")
        }
        cache.withLock { cache in
            // Make room by dropping one entry, not the whole cache.
            if cache.count >= maximumCached, let victim = cache.keys.first { cache[victim] = nil }
            cache[url] = certificate
        }
        return certificate
    }

    /// Confirms a subscription by fetching its SubscribeURL (only on an SNS endpoint host).
    func confirm(subscribeURL: String) async throws(WebhookRejection) {
        guard Self.isSNSURL(subscribeURL, certificate: false), let url = URL(string: subscribeURL) else {
            throw .forbidden("bad_subscribe_url", "SubscribeURL is not an https URL on an SNS endpoint")
        }
        let status: Int
        do {
            status = try await fetch(url).status
        } catch {
            throw WebhookRejection(503, "confirmation_failed", "the subscription could not be confirmed; SNS will resend the confirmation")
        }
        guard (200..<300).contains(status) else {
            throw WebhookRejection(503, "confirmation_failed", "the subscription could not be confirmed (SNS answered \(status))")
        }
    }
}

/// An Amazon SNS message as delivered over HTTP(S), with its signature check.
public struct SNSMessage: Sendable {
    public var type: String
    public var fields: [String: String]
    public var body: [String: JSONValue]

    /// Reads an SNS message body (JSON sent as text/plain).
    /// - Throws: A ``WebhookRejection`` (400) when the body is not an SNS message.
    public init(_ body: [String: JSONValue]) throws(WebhookRejection) {
        guard case .string(let type)? = body["Type"] else { throw .malformed("not an SNS message: `Type` is missing") }
        self.type = type
        self.body = body
        var fields: [String: String] = [:]
        for (key, value) in body { if case .string(let text) = value { fields[key] = text } }
        self.fields = fields
        for required in ["MessageId", "TopicArn", "Timestamp", "Signature", "SignatureVersion", "SigningCertURL"] where fields[required] == nil {
            throw .malformed("not a valid SNS message: `\(required)` is missing")
        }
    }

    /// The names signed for this message type, in order.
    var signedFields: [String] {
        switch type {
        case "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        case "SubscriptionConfirmation", "UnsubscribeConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        default: []
        }
    }

    /// The string SNS signs: `Name\nValue\n` for each signed field present.
    public var stringToSign: [UInt8] {
        var out = ""
        for name in signedFields {
            guard let value = fields[name] else { continue }
            out += "\(name)\n\(value)\n"
        }
        return Array(out.utf8)
    }

    /// Verifies the signature with `certificate`.
    /// - Throws: A ``WebhookRejection`` (401).
    public func verify(with certificate: SigningCertificate) throws(WebhookRejection) {
        guard !signedFields.isEmpty else { throw .malformed("unknown SNS message type \(type)") }
        let digest: DigestAlgorithm
        switch fields["SignatureVersion"] {
        case "1"?: digest = .sha1
        case "2"?: digest = .sha256
        default: throw .unauthorized("bad_signature", "unsupported SNS SignatureVersion")
        }
        guard let signature = fields["Signature"].flatMap({ ByteEncoding.base64.decode($0) }), !signature.isEmpty else {
            throw .unauthorized("bad_signature", "the SNS Signature is not base64")
        }
        guard certificate.verify(signature: signature, message: stringToSign, digest: digest) else {
            throw .unauthorized("bad_signature", "the SNS signature does not verify")
        }
    }
}
