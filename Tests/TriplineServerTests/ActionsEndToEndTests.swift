import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A local webhook receiver on a real socket: records each request's idempotency key and body.
final class WebhookSink: Sendable {
    let received = Mutex<[(key: String, body: String)]>([])
    let status = Mutex(200)
    let delay: Duration
    let portBox = Mutex<Int?>(nil)
    let task = Mutex<Task<Void, any Error>?>(nil)

    init(delay: Duration = .zero) { self.delay = delay }

    var port: Int { portBox.withLock { $0 ?? 0 } }
    var requests: [(key: String, body: String)] { received.withLock { $0 } }

    func start() async throws {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = String(buffer: try await request.collectBody(upTo: 1 << 20))
            let key = request.headers[HTTPField.Name("Idempotency-Key")!] ?? ""
            if self.delay > .zero { try await Task.sleep(for: self.delay) }
            let code = self.status.withLock { $0 }
            if code < 300 { self.received.withLock { $0.append((key, body)) } }
            return Response(status: HTTPResponse.Status(code: code))
        }
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.portBox.withLock { $0 = channel.localAddress?.port } },
            logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
        task.withLock { $0 = Task { try await app.run() } }
        for _ in 0..<400 where portBox.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
    }

    func stop() { task.withLock { $0?.cancel() } }
}

func webhookRules(port: Int) -> [String: String] {
    [
        "destinations/sink.yaml": """
            destinations:
              sink:
                type: webhook
                url: http://127.0.0.1:\(port)/hook
                allow_private_network: true
            """,
        "jobs.yaml": """
            name: job done
            trigger: {type: event, posture: Reactive, expect: [job.done], threshold: 1, within: 0}
            actions:
              - type: call-webhook
                destination: sink
                payload: "{{ event.id }}"
                retry: {max_attempts: 3, backoff: 0.05, max_backoff: 0.1}
            """,
    ]
}

@Suite(.serialized) struct ActionsEndToEndTests {
    @Test func killDuringDispatchLosesNoActionAndRetriesUseTheSameKey() async throws {
        // A slow target (100 ms a call), so that the kill comes while most actions are still to run.
        let sink = WebhookSink(delay: .milliseconds(100))
        try await sink.start()
        let server = try ServerProcess(rules: webhookRules(port: sink.port))
        try await server.start()
        let total = 200
        let events = (0..<total).map { TestEvent.json($0 + 1, "job.done", resource: "job.\($0 % 10)") }
        let (status, _) = try await server.request("POST", "/api/events", json: TestEvent.array(events))
        #expect(status == 204)
        // Kill while the dispatcher is part-way through.
        for _ in 0..<1000 where sink.requests.count < 10 { try await Task.sleep(for: .milliseconds(2)) }
        try await server.kill9()
        let beforeRestart = sink.requests.count
        #expect(beforeRestart < total, "the kill came during dispatch (\(beforeRestart) of \(total) done)")
        try await server.start()
        let expected = Set((1...total).map(TestEvent.id))
        for _ in 0..<600 where Set(sink.requests.map(\.body)) != expected { try await Task.sleep(for: .milliseconds(20)) }
        let requests = sink.requests
        #expect(Set(requests.map(\.body)) == expected, "every action ran after the restart: \(Set(requests.map(\.body)).count) of \(total)")
        // An action run twice (done before the kill, not yet recorded) carries the same key both times.
        let keysPerEvent = Dictionary(grouping: requests, by: \.body).mapValues { Set($0.map(\.key)) }
        #expect(keysPerEvent.values.allSatisfy { $0.count == 1 })
        #expect(Set(requests.map(\.key)).count == total)
        var delivered = 0
        for _ in 0..<100 {
            let (_, list) = try await server.json("GET", "/api/deliveries?status=delivered&limit=1000")
            delivered = (list as? [[String: Any]])?.count ?? 0
            if delivered == total { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(delivered == total)
        try await server.stop()
        sink.stop()
    }

    @Test func deadLettersAreListedShownAndRedrivenThroughTheAPIAndTheCommand() async throws {
        let sink = WebhookSink()
        sink.status.withLock { $0 = 400 }
        try await sink.start()
        let server = try ServerProcess(rules: webhookRules(port: sink.port))
        try await server.start()
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.done")]))
        var dead: [[String: Any]] = []
        for _ in 0..<100 {
            dead = (try await server.json("GET", "/api/deliveries?status=dead").1 as? [[String: Any]]) ?? []
            if !dead.isEmpty { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let id = try #require(dead.first?["id"] as? String)
        #expect(dead.first?["action_type"] as? String == "call-webhook")
        #expect((dead.first?["last_error"] as? String)?.contains("HTTP 400") == true)
        // The attempt is in the event log as Prefect's action events, next to the automation's triggered event.
        let (_, page) = try await server.json(
            "POST", "/api/events/filter", json: #"{"filter": {"event": {"prefix": ["prefect.automation.action."]}, "order": "ASC"}}"#)
        let actionEvents = (page as? [String: Any])?["events"] as? [[String: Any]] ?? []
        #expect(actionEvents.compactMap { $0["event"] as? String } == ["prefect.automation.action.triggered", "prefect.automation.action.failed"])
        let failed = actionEvents.last
        #expect(((failed?["payload"] as? [String: Any])?["reason"] as? String)?.contains("HTTP 400") == true)
        #expect((failed?["payload"] as? [String: Any])?["will_retry"] as? Bool == false)
        #expect(((failed?["related"] as? [[String: String]])?.first?["prefect.resource.role"]) == "triggering-event")
        #expect(((failed?["resource"] as? [String: String])?["prefect.resource.id"])?.hasPrefix("prefect.automation.") == true)
        let (status, shown) = try await server.json("GET", "/api/deliveries/\(id)")
        #expect(status == 200)
        let attempts = (shown as? [String: Any])?["attempts"] as? [[String: Any]]
        #expect(attempts?.count == 1, "a 400 is not retried")
        #expect(attempts?.first?["status_code"] as? Int == 400)
        #expect(try await server.json("GET", "/api/deliveries?status=nonsense").0 == 422)
        #expect(try await server.json("GET", "/api/deliveries/not-a-uuid/0").0 == 422)
        sink.status.withLock { $0 = 200 }
        #expect(try await server.json("POST", "/api/deliveries/\(id)/retry").0 == 202)
        #expect(try await server.json("POST", "/api/deliveries/\(id)/retry").0 == 409, "a pending delivery is not re-driven twice")

        // The command line: ls, show, retry against the running server.
        for _ in 0..<100 where sink.requests.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        #expect(sink.requests.count == 1, "the re-driven delivery ran")
        let listed = try server.command(["deliveries", "ls"])
        #expect(listed.0 == 0)
        #expect(listed.1.contains(id) && listed.1.contains("delivered"), "\(listed.1)")
        let shownByCommand = try server.command(["deliveries", "show", id])
        #expect(shownByCommand.0 == 0)
        #expect(shownByCommand.1.contains("HTTP 400") && shownByCommand.1.contains("success"), "\(shownByCommand.1)")
        let refused = try server.command(["deliveries", "retry", id])
        #expect(refused.0 != 0 && refused.1.contains("only dead or suppressed"), "\(refused.1)")
        try await server.stop()
        sink.stop()
    }
}

@Suite struct AutomationActionsEndToEndTests {
    @Test func anAutomationCanPauseItselfAndAnotherResumesIt() async throws {
        let onceID = "6b1f3c2e-0d4a-4e5b-9c8d-7a6f5e4d3c2b"
        let server = try ServerProcess(rules: [
            "automations/once.yaml": """
                id: \(onceID)
                name: fire once
                trigger: {type: event, posture: Reactive, expect: [job.started], threshold: 1, within: 0}
                actions: [{type: pause-automation, source: inferred}]
                """,
            "automations/rearm.yaml": """
                - name: rearm
                  trigger: {type: event, posture: Reactive, expect: [job.rearm], threshold: 1, within: 0}
                  actions: [{type: resume-automation, source: selected, automation_id: \(onceID)}]
                - name: rearm nothing
                  trigger: {type: event, posture: Reactive, expect: [job.rearm.wrong], threshold: 1, within: 0}
                  actions: [{type: resume-automation, source: selected, automation_id: 00000000-0000-4000-8000-00000000dead}]
                """,
        ])
        try await server.start()
        func firings() async throws -> Int {
            ((try await server.json("GET", "/api/firings").1 as? [[String: Any]]) ?? []).filter { $0["automation"] as? String == "fire once" }.count
        }
        func enabled() async throws -> Bool? { (try await server.json("GET", "/api/automations/\(onceID)").1 as? [String: Any])?["enabled"] as? Bool }
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.started")]))
        for _ in 0..<100 where try await enabled() != false { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await enabled() == false, "the pause-automation action disabled the automation that fired")
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(2, "job.started")]))
        #expect(try await firings() == 1, "a paused automation does not fire")
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(3, "job.rearm")]))
        for _ in 0..<100 where try await enabled() != true { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await enabled() == true, "another automation's resume-automation enabled it again")
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(4, "job.started")]))
        #expect(try await firings() == 2)
        // An unknown automation id is a permanent failure.
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(5, "job.rearm.wrong")]))
        var dead: [[String: Any]] = []
        for _ in 0..<100 {
            dead = (try await server.json("GET", "/api/deliveries?status=dead").1 as? [[String: Any]]) ?? []
            if !dead.isEmpty { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect((dead.first?["last_error"] as? String)?.contains("no automation has the id") == true, "\(dead)")
        try await server.stop()
    }
}
