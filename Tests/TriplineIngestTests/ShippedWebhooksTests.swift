import Foundation
import Testing
import TriplineCore
import TriplineIngest

/// The webhook endpoints shipped in rules/webhooks are valid, and the GitHub one maps a real push to the event the
/// shipped "push to main" automation waits for.
@Suite struct ShippedWebhooksTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../rules/webhooks").standardizedFileURL

    static func endpoints() throws -> [WebhookEndpoint] {
        var endpoints: [WebhookEndpoint] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where name.hasSuffix(".yaml") {
            let loaded = WebhookEndpoint.load(text: try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8), file: name)
            #expect(loaded.errors.isEmpty, "\(name): \(loaded.errors.map(\.description))")
            endpoints += loaded.endpoints
        }
        return endpoints
    }

    @Test func everyShippedEndpointIsValidAndUsesSecretReferences() throws {
        let endpoints = try Self.endpoints()
        #expect(Set(endpoints.map(\.preset)).isSuperset(of: [.github, .stripe, .awsS3, .cloudevents]))
        #expect(Set(endpoints.map(\.slug)).count == endpoints.count)
    }

    @Test func theShippedGitHubEndpointFeedsThePushAutomation() async throws {
        let github = try #require(try Self.endpoints().first { $0.preset == .github })
        let body = Array(#"{"ref":"refs/heads/main","after":"abc","deleted":false,"repository":{"full_name":"acme/api"},"sender":{"login":"jane"}}"#.utf8)
        let secret = Secret(bytes: Array("shipped-test".utf8), reference: github.secrets[0])
        let headers = WebhookHeaders([
            ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("X-Hub-Signature-256", "sha256=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: secret.bytes, message: body))),
        ])
        let event = try await WebhookProcessor.testing(github, secrets: [secret]).process(.post(github.slug, headers: headers, body: body)).events[0]
        let automations = Automation.load(
            text: try String(contentsOf: Self.folder.appendingPathComponent("../automations/github-push-main.yaml"), encoding: .utf8), file: "push").automations
        let firings = Replay.run(automations: automations, events: [event], until: event.occurred + .seconds(1))
        #expect(firings.count == 1, "the push to main of acme/api fires the shipped automation")
    }
}
