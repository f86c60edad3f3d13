import Foundation
import Testing
import TriplineCore
import TriplineIngest

/// No request body, however broken, crashes a preset: mutated fixtures and random bytes through every preset (with
/// verification switched off where possible, so that the mapping code sees the damage) end in an event or a 4xx.
@Suite struct RobustnessTests {
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seeds = [
        "github/push.json", "github/pull_request.opened.json", "stripe/charge.refunded.json", "aws/s3/doc-objectcreated-put.json",
        "aws/sqs/powertools-s3SqsEvent.json", "aws/eventbridge/powertools-object-created.json", "cloudevents/spec-C234.structured.json",
        "aws/sns/real-notification.sigv2.json",
    ]

    @Test(arguments: [WebhookEndpoint.Preset.awsS3, .cloudevents, .generic, .github, .stripe, .slack, .awsSNS])
    func mutatedBodiesNeverCrash(_ preset: WebhookEndpoint.Preset) async throws {
        var endpoint = WebhookEndpoint(slug: "fuzz", preset: preset)
        endpoint.unauthenticated = true
        endpoint.topics = ["*"]
        let secret = Secret(bytes: Array("fuzz-secret".utf8), reference: .environment("FUZZ"))
        let processor = WebhookProcessor.testing(endpoint, secrets: [secret])
        var random = Generator(state: UInt64(preset.rawValue.hashValue & 0xffff))
        var outcomes: [Int: Int] = [:]
        for round in 0..<400 {
            var body = try FixtureFiles.bytes(Self.seeds[round % Self.seeds.count])
            switch round % 4 {
            case 0: for _ in 0..<Int.random(in: 1...8, using: &random) { body[Int.random(in: 0..<body.count, using: &random)] = UInt8.random(in: 0...255, using: &random) }
            case 1: body = Array(body.prefix(Int.random(in: 0..<body.count, using: &random)))
            case 2: body = (0..<Int.random(in: 0..<512, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            default: body.insert(contentsOf: Array(#"{"Records":[{"s3":{"bucket":{"name":1},"object":{"key":null}}}],"type":[],"detail":7}"#.utf8), at: min(body.count, 1))
            }
            // Signed correctly, so that the signature passes and the body itself is what is tested.
            let t = 1_700_000_000
            let hex = { (message: [UInt8]) in ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: secret.bytes, message: message)) }
            let headers = WebhookHeaders([
                ("Content-Type", round % 3 == 0 ? "application/cloudevents+json" : "application/json"), ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", "sha256=" + hex(body)), ("Stripe-Signature", "t=\(t),v1=" + hex(Array("\(t).".utf8) + body)),
                ("X-Slack-Request-Timestamp", "\(t)"), ("X-Slack-Signature", "v0=" + hex(Array("v0:\(t):".utf8) + body)), ("ce-specversion", "1.0"),
            ])
            let request = WebhookRequest.post("fuzz", headers: headers, body: body, at: Double(t))
            do {
                let result = try await processor.process(request)
                outcomes[result.status, default: 0] += 1
            } catch {
                #expect((400..<500).contains(error.status) || error.status == 503, "\(preset) round \(round): \(error)")
                outcomes[error.status, default: 0] += 1
            }
        }
        #expect(outcomes.values.reduce(0, +) == 400)
    }
}
