import Foundation
import TriplineCore
import TriplineIngest

/// The webhook fixtures kept next to these tests.
enum FixtureFiles {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: folder.appendingPathComponent(path))) }

    static func json(_ path: String) throws -> JSONValue { try JSONValue.parse(Data(contentsOf: folder.appendingPathComponent(path))) }

    /// The headers of `name.json` from `name.headers.json`, without Content-Length.
    static func headers(_ bodyPath: String) throws -> WebhookHeaders {
        let headerPath = bodyPath.replacingOccurrences(of: ".json", with: ".headers.json")
        guard case .object(let object) = try json(headerPath) else { return WebhookHeaders() }
        var headers = WebhookHeaders()
        for (name, value) in object.sorted(by: { $0.key < $1.key }) where name.lowercased() != "content-length" {
            headers.add(name, value.stringValue ?? "")
        }
        return headers
    }

    /// Every `*.json` body under `folder` that has a `.headers.json` next to it.
    static func signedBodies(_ subfolder: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent(subfolder).path)
        return names.filter { $0.hasSuffix(".headers.json") }.map { "\(subfolder)/\($0.replacingOccurrences(of: ".headers.json", with: ".json"))" }.sorted()
    }

    static let githubSecret = Secret(bytes: Array("It's a Secret to Everybody".utf8), reference: .environment("GITHUB_SECRET"))
    static let stripeSecret = Secret(bytes: Array("whsec_test_secret".utf8), reference: .environment("STRIPE_SECRET"))
}

extension WebhookProcessor {
    /// A processor for `endpoint` with `secrets`, fetching nothing from the network.
    static func testing(_ endpoint: WebhookEndpoint, secrets: [Secret], credential: Secret? = nil, pinned: [String: SigningCertificate] = [:]) -> WebhookProcessor {
        WebhookProcessor(
            endpoint: ResolvedWebhookEndpoint(endpoint, secrets: secrets, credentials: credential.map { [$0] } ?? []),
            aws: AWSMessageVerifier(fetch: { _ in throw URLError(.notConnectedToInternet) }, pinned: pinned))
    }
}

extension WebhookRequest {
    static func post(_ slug: String, headers: WebhookHeaders, body: [UInt8], at seconds: Double = 1_700_000_000) -> WebhookRequest {
        WebhookRequest(method: "POST", slug: slug, headers: headers, body: body, received: Instant(seconds: seconds))
    }
}

/// The rejection `body` throws, or `nil` when it passes.
func rejection(_ body: () throws(WebhookRejection) -> Void) -> WebhookRejection? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// The rejection `body` throws, or `nil` when it passes.
func rejection(_ body: () async throws(WebhookRejection) -> Void) async -> WebhookRejection? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}
