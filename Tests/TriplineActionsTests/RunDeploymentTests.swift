import Foundation
import Synchronization
import Testing
import TriplineActions
import TriplineCore
import TriplineTestTargets
import TriplineStorage

/// run-deployment against a local server that answers as Prefect's API does (create_flow_run returns the existing run
/// for a repeated idempotency key).
@Suite struct RunDeploymentTests {
    static let deploymentID = "0d2f7a64-3b8e-4c1d-a5f9-6e2b8c4d1f37"

    @Test func createsAFlowRunWithRenderedParametersAndTheIdempotencyKey() async throws {
        let runs = Mutex<[String: String]>([:])  // idempotency key -> run id
        let target = FakeTarget { request, number in
            if request.method == "GET", request.path == "/api/deployments/name/ingest/s3%20landing" || request.path == "/api/deployments/name/ingest/s3 landing" {
                return FakeAnswer(status: 200, body: #"{"id":"\#(Self.deploymentID)","name":"s3 landing"}"#)
            }
            if request.method == "GET" { return FakeAnswer(status: 404, body: #"{"detail":"Deployment not found"}"#) }
            guard request.path == "/api/deployments/\(Self.deploymentID)/create_flow_run" else { return FakeAnswer(status: 404, body: #"{"detail":"Not found"}"#) }
            let body = (try? JSONValue.parse(request.body)) ?? .null
            let key = body["idempotency_key"]?.stringValue ?? ""
            let (id, existed) = runs.withLock { table -> (String, Bool) in
                if let id = table[key] { return (id, true) }
                let id = UUID().uuidString.lowercased()
                table[key] = id
                return (id, false)
            }
            // The first answer is lost on the way back, so the attempt is retried with the same key.
            return FakeAnswer(status: existed ? 200 : 201, body: #"{"id":"\#(id)","name":"tripline-run"}"#, delay: number == 1 ? .milliseconds(2_000) : .zero)
        }
        try await target.start()
        let harness = try DispatcherHarness(
            destinations: [Destination(name: "prefect", kind: .prefect, url: .literal(target.url + "/api/"), apiKey: .environment("TEST_PREFECT_KEY"), timeout: TimeSpan(seconds: 1))],
            secrets: ["TEST_PREFECT_KEY": "pnu_secret"])
        harness.start()
        let event = Event(
            id: UUID(), occurred: Instant(seconds: 1_700_000_000), event: "aws.s3.ObjectCreated:Put",
            resource: Resource(["prefect.resource.id": "aws.s3.bucket.acme-lake", "aws.s3.key": "incoming/a.parquet"]))
        let id = try await harness.fire(
            [
                Action(
                    type: "run-deployment",
                    fields: [
                        "destination": "prefect", "deployment": "ingest/s3 landing", "schedule_after": 60,
                        "parameters": ["key": "{{ event.resource|label:\"aws.s3.key\" }}", "fixed": 3],
                    ])
            ], event: event)[0]
        _ = try await harness.settle()
        await harness.stop()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .delivered)
        #expect(delivery.attempts.map(\.statusCode) == [nil, 200], "the lost answer is a time-out; the retry gets the run created before")
        #expect(runs.withLock { $0.count } == 1, "one flow run for the action")
        let creates = target.received.filter { $0.method == "POST" }
        #expect(creates.count == 2)
        let body = try JSONValue.parse(try #require(creates.first).body)
        #expect(body["parameters"] == ["key": "incoming/a.parquet", "fixed": 3])
        #expect(body["state"]?["type"] == "SCHEDULED")
        #expect(body["idempotency_key"]?.stringValue?.hasPrefix("tripline-") == true)
        #expect(Set(creates.map { (try? JSONValue.parse($0.body))?["idempotency_key"] }).count == 1)
        #expect(creates.first?.headers["authorization"] == "Bearer pnu_secret")
        let executed = harness.sink.all.first { $0.event == "prefect.automation.action.executed" }
        #expect(executed?.related.contains { $0.id.hasPrefix("prefect.flow-run.") } == true)
        #expect(!harness.sink.all.map(\.jsonValue.jsonText).joined().contains("pnu_secret"))
        target.stop()
    }

    @Test func anUnknownDeploymentOrNoDestinationIsNotRetried() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 404, body: #"{"detail":"Deployment not found"}"#) }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [Destination(name: "prefect", kind: .prefect, url: .literal(target.url + "/api"))])
        harness.start()
        let named = try await harness.fire([Action(type: "run-deployment", fields: ["destination": "prefect", "deployment": "no/such"])])[0]
        let local = try await harness.fire([Action(type: "run-deployment", fields: ["deployment_id": .string(Self.deploymentID)])])[0]
        _ = try await harness.settle()
        await harness.stop()
        let first = try #require(try await harness.store.delivery(id: named))
        #expect(first.status == .dead && first.attempts.count == 1)
        #expect(first.lastError?.contains("no deployment named \"no/such\"") == true)
        let second = try #require(try await harness.store.delivery(id: local))
        #expect(second.status == .dead && second.lastError?.contains("local runner") == true)
        target.stop()
    }
}

/// Prefect's flow-run actions on the flow run the triggering event is about.
@Suite struct FlowRunActionTests {
    @Test func changeCancelResumeAndDeleteCallPrefectForTheEventsFlowRun() async throws {
        let target = FakeTarget { request, _ in
            request.path.hasSuffix("/set_state") ? FakeAnswer(status: 201, body: #"{"status":"ACCEPT","details":{}}"#) : FakeAnswer(status: 200, body: "{}")
        }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [Destination(name: "prefect", kind: .prefect, url: .literal(target.url + "/api"))])
        harness.start()
        let runID = "3c2b1a00-5e4d-4f6a-8b7c-9d0e1f2a3b4c"
        let event = Event(
            id: UUID(), occurred: Instant(seconds: 1_700_000_000), event: "prefect.flow-run.Running",
            resource: Resource(["prefect.resource.id": "prefect.flow-run.\(runID)"]))
        try await harness.fire(
            [
                Action(type: "change-flow-run-state", fields: ["destination": "prefect", "state": "FAILED", "message": "stuck in {{ event.event }}"]),
                Action(type: "cancel-flow-run", fields: ["destination": "prefect"]),
                Action(type: "resume-flow-run", fields: ["destination": "prefect"]),
                Action(type: "delete-flow-run", fields: ["destination": "prefect"]),
            ], event: event)
        let deliveries = try await harness.settle()
        await harness.stop()
        #expect(deliveries.count == 4)
        #expect(deliveries.allSatisfy { $0.status == .delivered }, "\(deliveries.map(\.lastError))")
        let calls = Set(target.received.map { "\($0.method) \($0.path)" })
        #expect(
            calls == [
                "POST /api/flow_runs/\(runID)/set_state", "POST /api/flow_runs/\(runID)/resume", "DELETE /api/flow_runs/\(runID)",
            ])
        let states = target.received.filter { $0.path.hasSuffix("/set_state") }.compactMap { try? JSONValue.parse($0.body) }
        #expect(states.contains { $0["state"]?["type"] == "FAILED" && $0["state"]?["message"] == "stuck in prefect.flow-run.Running" })
        #expect(states.contains { $0["state"]?["type"] == "CANCELLING" })
        target.stop()
    }

    @Test func anEventAboutNoFlowRunIsNotRetried() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 200) }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [Destination(name: "prefect", kind: .prefect, url: .literal(target.url + "/api"))])
        harness.start()
        let id = try await harness.fire([Action(type: "cancel-flow-run", fields: ["destination": "prefect"])])[0]
        _ = try await harness.settle()
        await harness.stop()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .dead && delivery.attempts.count == 1)
        #expect(delivery.lastError?.contains("names no flow run") == true)
        #expect(target.received.isEmpty)
        target.stop()
    }
}
