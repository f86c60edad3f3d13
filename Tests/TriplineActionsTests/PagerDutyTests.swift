import Foundation
import Synchronization
import Testing
import TriplineActions
import TriplineCore
import TriplineTestTargets
import TriplineStorage

/// PagerDuty's Events API v2, against a local server that answers as PagerDuty documents (fixtures/pagerduty).
@Suite struct PagerDutyTests {
    static let routingKey = "e93facc04764012d7bfb002500d5d1a6"

    func harness(_ target: FakeTarget) throws -> DispatcherHarness {
        try DispatcherHarness(
            destinations: [
                Destination(
                    name: "oncall", kind: .pagerduty, url: .literal(target.url + "/v2/enqueue"), routingKey: .environment("TEST_PD_KEY"),
                    rateLimit: RateLimit(count: 0, per: .seconds(1)))
            ], secrets: ["TEST_PD_KEY": Self.routingKey])
    }

    @Test func triggerAcknowledgeAndResolveAreTheDocumentedRequests() async throws {
        let accepted = try Fixture.answer("pagerduty/response.202.json")
        let target = FakeTarget { _, _ in accepted }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        let full = try JSONValue.parse(try Fixture.text("pagerduty/request.trigger.full.json"))
        var fields: [String: JSONValue] = ["destination": "oncall", "body": full["payload"]!["summary"]!]
        for key in ["timestamp", "severity", "source", "component", "group", "class", "custom_details"] { fields[key] = full["payload"]![key]! }
        for key in ["dedup_key", "event_action", "client", "client_url", "links", "images"] { fields[key] = full[key]! }
        try await harness.fire([Action(type: "send-notification", fields: fields)])
        _ = try await harness.settle()
        try await harness.fire([Action(type: "send-notification", fields: ["destination": "oncall", "body": "-", "event_action": "acknowledge", "dedup_key": "srv01/mysql"])])
        _ = try await harness.settle()
        // The resolving side builds the same dedup key from a template.
        try await harness.fire(
            [Action(type: "send-notification", fields: ["destination": "oncall", "body": "-", "event_action": "resolve", "dedup_key": "{{ labels.host }}/mysql"])],
            labels: ["host": "srv01"])
        let deliveries = try await harness.settle()
        await harness.stop()
        #expect(deliveries.allSatisfy { $0.status == .delivered })
        let bodies = target.received.map(\.body)
        #expect(bodies.count == 3)
        #expect(target.received.allSatisfy { $0.path == "/v2/enqueue" && $0.headers["content-type"] == "application/json" })
        #expect(sameJSON(bodies[0], try Fixture.text("pagerduty/request.trigger.full.json")), "\(bodies[0])")
        #expect(sameJSON(bodies[1], try Fixture.text("pagerduty/request.acknowledge.json")), "\(bodies[1])")
        #expect(sameJSON(bodies[2], try Fixture.text("pagerduty/request.resolve.json")), "\(bodies[2])")
        // The routing key is a secret: not in the events or the attempt records.
        #expect(!harness.sink.all.map(\.jsonValue.jsonText).joined().contains(Self.routingKey))
        let executed = harness.sink.all.filter { $0.event == "prefect.automation.action.executed" }
        #expect(executed.count == 3)
        #expect(executed.first?.payload["status_code"] == 202)
        target.stop()
    }

    @Test func aMinimalTriggerGetsADedupKeyDerivedFromTheAutomationAndItsBucket() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 202, body: #"{"status":"success","message":"Event processed","dedup_key":"x"}"#) }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        let minimal = try JSONValue.parse(try Fixture.text("pagerduty/request.trigger.minimal.json"))
        try await harness.fire(
            [
                Action(
                    type: "send-notification",
                    fields: ["destination": "oncall", "body": minimal["payload"]!["summary"]!, "source": minimal["payload"]!["source"]!, "severity": "critical"])
            ], labels: ["prefect.resource.id": "prod-datapipe03"])
        _ = try await harness.settle()
        await harness.stop()
        let sent = try JSONValue.parse(try #require(target.received.first).body)
        guard case .object(var object) = sent else { Issue.record("not an object"); return }
        let key = object.removeValue(forKey: "dedup_key")
        #expect(JSONValue.object(object) == minimal, "the rest is the documented minimal trigger")
        #expect(key == .string("tripline/\(harness.automationID.uuidString.lowercased())/prod-datapipe03"))
        target.stop()
    }

    @Test func invalidEventsAreNotRetriedAndThrottlingIs() async throws {
        let invalid = try Fixture.answer("pagerduty/response.400.invalid-event.json")
        let throttled = try Fixture.answer("pagerduty/response.429.json")
        let failed = try Fixture.answer("pagerduty/response.5xx.json")
        let accepted = try Fixture.answer("pagerduty/response.202.json")
        let seen = Mutex<[String: Int]>([:])
        let target = FakeTarget { request, _ in
            let kind = ["invalid", "throttled", "failed"].first { request.body.contains($0) } ?? ""
            let count = seen.withLock { counts -> Int in
                counts[kind, default: 0] += 1
                return counts[kind]!
            }
            switch kind {
            case "invalid": return invalid
            case "throttled": return count <= 2 ? throttled : accepted
            default: return count == 1 ? failed : accepted
            }
        }
        try await target.start()
        let harness = try harness(target)
        harness.start()
        var ids: [String: String] = [:]
        for kind in ["invalid", "throttled", "failed"] {
            ids[kind] = try await harness.fire([Action(type: "send-notification", fields: ["destination": "oncall", "body": .string(kind)])])[0]
        }
        _ = try await harness.settle()
        await harness.stop()
        let invalidDelivery = try #require(try await harness.store.delivery(id: ids["invalid"]!))
        #expect(invalidDelivery.status == .dead)
        #expect(invalidDelivery.attempts.map(\.statusCode) == [400])
        #expect(invalidDelivery.lastError?.contains("Length of 'routing_key' is incorrect") == true, "\(invalidDelivery.lastError ?? "")")
        let throttledDelivery = try #require(try await harness.store.delivery(id: ids["throttled"]!))
        #expect(throttledDelivery.status == .delivered)
        #expect(throttledDelivery.attempts.map(\.statusCode) == [429, 429, 202])
        let failedDelivery = try #require(try await harness.store.delivery(id: ids["failed"]!))
        #expect(failedDelivery.attempts.map(\.statusCode) == [500, 202])
        target.stop()
    }
}
