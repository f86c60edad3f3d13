import Foundation
import Testing
import TriplineActions
import TriplineCore
import TriplineTestTargets
import TriplineStorage

/// Slack incoming webhooks, against a local server that answers as Slack documents (fixtures/slack).
@Suite struct SlackTests {
    static let secretPath = "/services/T000/B000/SECRETsecret123"

    func slack(_ target: FakeTarget, limit: RateLimit? = RateLimit(count: 0, per: .seconds(1))) -> Destination {
        Destination(name: "ops-slack", kind: .slack, url: .environment("TEST_SLACK_URL"), rateLimit: limit)
    }

    func harness(_ target: FakeTarget, limit: RateLimit? = RateLimit(count: 0, per: .seconds(1))) throws -> DispatcherHarness {
        try DispatcherHarness(destinations: [slack(target, limit: limit)], secrets: ["TEST_SLACK_URL": target.url + Self.secretPath])
    }

    @Test func aTextMessageIsTheDocumentedBodyAndOkIsSuccess() async throws {
        let ok = try Fixture.answer("slack/response.200.ok.json")
        let target = FakeTarget { _, _ in ok }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        let ids = try await harness.fire([
            Action(type: "send-notification", fields: ["destination": "ops-slack", "body": "This is a line of text.\nAnd this is another one."])
        ])
        let deliveries = try await harness.settle()
        await harness.stop()
        #expect(deliveries.map(\.status) == [.delivered])
        let request = try #require(target.received.first)
        #expect(request.method == "POST")
        #expect(request.path == Self.secretPath)
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.body == #"{"text":"This is a line of text.\nAnd this is another one."}"#, "byte for byte: \(request.body)")
        #expect(sameJSON(request.body, try Fixture.text("slack/request.text.json")))
        let delivery = try #require(try await harness.store.delivery(id: ids[0]))
        #expect(delivery.attempts.map(\.statusCode) == [200])
        #expect(delivery.attempts.first?.outcome == .success)
        // Prefect's action events, without the webhook URL anywhere.
        let names = harness.sink.all.map(\.event)
        #expect(names == ["prefect.automation.action.triggered", "prefect.automation.action.executed"])
        #expect(!harness.sink.all.map(\.jsonValue.jsonText).joined().contains("SECRET"), "the webhook URL is a secret")
        target.stop()
    }

    @Test func blockKitMessagesAreSentAsDocumented() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 200, body: "ok") }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        let fixture = try JSONValue.parse(try Fixture.text("slack/request.blocks.json"))
        try await harness.fire([
            Action(type: "send-notification", fields: ["destination": "ops-slack", "body": fixture["text"]!, "blocks": fixture["blocks"]!])
        ])
        _ = try await harness.settle()
        await harness.stop()
        let request = try #require(target.received.first)
        #expect(sameJSON(request.body, try Fixture.text("slack/request.blocks.json")), "\(request.body)")
        target.stop()
    }

    @Test func slackErrorStringsFailAndOnlyRetriableOnesAreRetried() async throws {
        // Each firing's first request gets one of Slack's documented errors; a retried one then gets ok.
        let answers: [String: FakeAnswer] = [
            "invalid_payload": try Fixture.answer("slack/response.400.invalid_payload.json"),
            "action_prohibited": try Fixture.answer("slack/response.403.action_prohibited.json"),
            "no_service": try Fixture.answer("slack/response.404.no_service.json"),
            "channel_is_archived": try Fixture.answer("slack/response.410.channel_is_archived.json"),
            "rollup_error": try Fixture.answer("slack/response.500.rollup_error.json"),
        ]
        let seen = Mutex<Set<String>>([])
        let target = FakeTarget { request, _ in
            let key = request.body.contains("case:") ? String(request.body.split(separator: ":").last!.dropLast(2)) : ""
            let first = seen.withLock { $0.insert(key).inserted }
            return first ? answers[key]! : FakeAnswer(status: 200, body: "ok")
        }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        var ids: [String: String] = [:]
        for key in answers.keys.sorted() {
            ids[key] = try await harness.fire([Action(type: "send-notification", fields: ["destination": "ops-slack", "body": .string("case:\(key)")])])[0]
        }
        _ = try await harness.settle()
        await harness.stop()
        for (key, id) in ids {
            let delivery = try #require(try await harness.store.delivery(id: id))
            if key == "rollup_error" {
                #expect(delivery.status == .delivered, "500 is retried")
                #expect(delivery.attempts.map(\.outcome) == [.retry, .success])
                #expect(delivery.attempts.first?.error?.contains("rollup_error") == true)
            } else {
                #expect(delivery.status == .dead, "\(key): a 4xx is not retried")
                #expect(delivery.attempts.count == 1)
                #expect(delivery.lastError?.contains(key) == true, "the failure carries Slack's error string: \(delivery.lastError ?? "")")
            }
        }
        target.stop()
    }

    @Test func rateLimitedAnswersAreRetriedHonouringRetryAfter() async throws {
        let limited = try Fixture.answer("slack/response.429.rate_limited.json", retryAfter: "1")
        var stripped = limited
        stripped.headers["Retry-After"] = nil
        let withoutHeader = stripped
        let target = FakeTarget { request, number in
            if request.body.contains("with") && number == 0 { return limited }
            if request.body.contains("without") && number == 0 { return withoutHeader }
            return FakeAnswer(status: 200, body: "ok")
        }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        let id = try await harness.fire([Action(type: "send-notification", fields: ["destination": "ops-slack", "body": "with"])])[0]
        _ = try await harness.settle()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .delivered)
        #expect(delivery.attempts.map(\.statusCode) == [429, 200])
        let gap = delivery.attempts[1].started - delivery.attempts[0].started
        #expect(gap >= .seconds(1), "Retry-After: 1 was honoured (waited \(gap))")
        await harness.stop()
        target.stop()

        // Without Retry-After: retried after the policy's backoff.
        let second = FakeTarget { request, number in number == 0 ? withoutHeader : FakeAnswer(status: 200, body: "ok") }
        try await second.start()
        let other = try self.harness(second)
        other.start()
        let otherID = try await other.fire([Action(type: "send-notification", fields: ["destination": "ops-slack", "body": "without"])])[0]
        _ = try await other.settle()
        await other.stop()
        let retried = try #require(try await other.store.delivery(id: otherID))
        #expect(retried.attempts.map(\.statusCode) == [429, 200])
        second.stop()
    }

    @Test func theDefaultRateLimitSpacesMessagesToOnePerSecond() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 200, body: "ok") }
        try await target.start()
        let harness = try harness(target, limit: nil)
        harness.start()
        let firstFired = Instant(seconds: Date().timeIntervalSince1970)
        for index in 0..<3 { try await harness.fire([Action(type: "send-notification", fields: ["destination": "ops-slack", "body": .string("m\(index)")])]) }
        let deliveries = try await harness.settle()
        await harness.stop()
        #expect(deliveries.allSatisfy { $0.status == .delivered })
        #expect(target.received.count == 3)
        // When the dispatcher sent them (arrival times at the target also carry the machine's scheduling jitter).
        var sent: [Instant] = []
        for delivery in deliveries { if let first = try await harness.store.delivery(id: delivery.id)?.attempts.first { sent.append(first.started) } }
        sent.sort()
        #expect(sent.count == 3)
        if sent.count == 3 {
            // The first token is taken no earlier than the first firing, so the third message cannot start before two
            // seconds after it. (Measured from the first attempt instead, a first attempt that a loaded machine
            // started late would shorten the spread.)
            let spread = (sent[2] - firstFired).seconds
            #expect(spread >= 1.99, "three messages at 1/s: the third is sent two seconds after the first firing at the earliest: \(spread)")
            #expect((sent[1] - firstFired).seconds >= 0.99)
        }
        // Waiting for the rate limit is not an attempt.
        for delivery in deliveries { #expect(try await harness.store.delivery(id: delivery.id)?.attempts.count == 1) }
        target.stop()
    }

    @Test func aMissingSecretIsAConfigurationErrorThatNamesTheReferenceOnly() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 200, body: "ok") }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [slack(target)], secrets: [:])
        harness.start()
        let id = try await harness.fire([Action(type: "send-notification", fields: ["destination": "ops-slack", "body": "x"])])[0]
        _ = try await harness.settle()
        await harness.stop()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .dead)
        #expect(delivery.attempts.count == 1, "configuration errors are not retried")
        #expect(delivery.lastError?.contains("TEST_SLACK_URL") == true)
        #expect(target.received.isEmpty)
        target.stop()
    }
}

import Synchronization
