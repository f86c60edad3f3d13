public import AsyncHTTPClient
internal import Foundation
internal import NIOCore
internal import NIOHTTP1
public import TriplineCore

/// One HTTP call of an action, through the server's shared client, with the answer read into memory (bounded) and
/// every transport error turned into a retriable ``ActionFailure`` that names no URL (URLs can hold secrets).
public struct HTTPTarget: Sendable {
    /// An answer.
    public struct Answer: Sendable {
        /// The status code.
        public var status: Int
        /// The body as text (at most 64 KiB are read).
        public var body: String
        /// The `Retry-After` header, as a span, when present and readable.
        public var retryAfter: TimeSpan?
    }

    /// The shared client.
    public let client: HTTPClient

    /// Creates a target over `client`.
    public init(client: HTTPClient) {
        self.client = client
    }

    /// Sends a request.
    /// - Throws: ``ActionFailure`` (retriable) on network errors and time-outs.
    public func send(method: String, url: String, headers: [(String, String)], body: String?, timeout: TimeSpan, now: Instant) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .microseconds(max(1000, timeout.microseconds)))
        } catch let error as HTTPClientError {
            if error == .invalidURL || error == .emptyHost || error == .emptyScheme || error == .unsupportedScheme("") {
                throw ActionFailure(.permanent, "configuration: the URL is not valid")
            }
            throw ActionFailure(.retriable, "network error: \(Self.describe(error))")
        } catch {
            throw ActionFailure(.retriable, "network error: \(type(of: error))")
        }
        var text = ""
        do {
            var buffer = try await response.body.collect(upTo: 64 * 1024)
            text = buffer.readString(length: buffer.readableBytes) ?? ""
        } catch {
            text = ""
        }
        let retryAfter = response.headers.first(name: "Retry-After").flatMap { Self.retryAfter($0, now: now) }
        return Answer(status: Int(response.status.code), body: text, retryAfter: retryAfter)
    }

    /// AsyncHTTPClient's error descriptions, which name the kind of failure and never the URL.
    static func describe(_ error: HTTPClientError) -> String {
        switch error {
        case .connectTimeout: "connect timed out"
        case .deadlineExceeded, .readTimeout, .writeTimeout: "timed out"
        case .remoteConnectionClosed: "the connection was closed by the target"
        case .cancelled: "cancelled"
        default: "\(error)".split(separator: ":").first.map(String.init) ?? "request failed"
        }
    }

    /// Parses `Retry-After`: a number of seconds or an HTTP date.
    public static func retryAfter(_ value: String, now: Instant) -> TimeSpan? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite { return TimeSpan(seconds: seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return max(.zero, Instant(seconds: date.timeIntervalSince1970) - now)
    }
}
