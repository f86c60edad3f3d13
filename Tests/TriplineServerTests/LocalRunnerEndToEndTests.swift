import Foundation
import Testing
import TriplineTestTargets

/// The local runner inside `tripline serve`: a failing run's Failed event pages on-call through a fake PagerDuty, and
/// the next successful run's Completed event resolves the same incident.
@Suite struct LocalRunnerEndToEndTests {
    /// PagerDuty's documented 202 answer (the fixture the PagerDuty tests use).
    static func accepted() throws -> FakeAnswer {
        let file = ServerProcess.repository.appendingPathComponent("Tests/TriplineActionsTests/Fixtures/pagerduty/response.202.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        let body = String(decoding: try JSONSerialization.data(withJSONObject: object["body"] ?? [:], options: [.sortedKeys]), as: UTF8.self)
        return FakeAnswer(status: object["status_code"] as! Int, body: body, headers: object["headers"] as? [String: String] ?? [:])
    }

    static func rules(pagerDutyPort: Int) -> [String: String] {
        [
            "destinations/oncall.yaml": """
                destinations:
                  oncall:
                    type: pagerduty
                    url: http://127.0.0.1:\(pagerDutyPort)/v2/enqueue
                    routing_key: env:TEST_PD_ROUTING_KEY
                    rate_limit: none
                """,
            "deployments/nightly.yaml": """
                name: nightly
                # Fails unless its parameters say ok: yes.
                command: [sh, -c, 'echo "parameters: $(cat)"; grep -q \\"ok\\":\\"yes\\" "$TRIPLINE_PARAMETERS_FILE"']
                timeout: 30
                concurrency_limit: 1
                """,
            "automations/run.yaml": """
                name: run nightly on request
                trigger: {type: event, posture: Reactive, expect: [job.requested], threshold: 1, within: 0}
                actions:
                  - type: run-deployment
                    source: selected
                    deployment: nightly
                    parameters: {ok: "{{ event.payload.ok }}"}
                """,
            "automations/page.yaml": """
                name: page when a run fails
                trigger: {type: event, posture: Reactive, expect: [prefect.flow-run.Failed], match: {prefect.resource.id: prefect.flow-run.*},
                          for_each: [related:deployment:prefect.resource.id], threshold: 1, within: 0}
                actions:
                  - type: send-notification
                    destination: oncall
                    event_action: trigger
                    dedup_key: "flow-failures/{{ firing.key }}"
                    severity: critical
                    source: tripline
                    body: "{{ event.resource|label:\\"prefect.resource.name\\" }} failed: {{ event.resource|label:\\"prefect.state-message\\" }}"
                """,
            "automations/resolve.yaml": """
                name: deployment recovered
                trigger: {type: event, posture: Reactive, expect: [prefect.flow-run.Completed], match: {prefect.resource.id: prefect.flow-run.*},
                          for_each: [related:deployment:prefect.resource.id], threshold: 1, within: 0}
                actions:
                  - type: send-notification
                    destination: oncall
                    event_action: resolve
                    dedup_key: "flow-failures/{{ firing.key }}"
                    body: "{{ firing.key }} recovered"
                """,
        ]
    }

    static func requested(_ number: Int, ok: String) -> [String: Any] {
        var event = TestEvent.json(number, "job.requested")
        event["payload"] = ["ok": ok]
        return event
    }

    @Test func aFailedRunPagesAndTheNextCompletedRunResolvesTheIncident() async throws {
        let accepted = try Self.accepted()
        let pagerDuty = FakeTarget { _, _ in accepted }
        try await pagerDuty.start()
        let server = try ServerProcess(rules: Self.rules(pagerDutyPort: pagerDuty.port))
        server.environment["TEST_PD_ROUTING_KEY"] = "e93facc04764012d7bfb002500d5d1a6"
        try await server.start()

        _ = try await server.request("POST", "/api/events", json: TestEvent.array([Self.requested(1, ok: "no")]))
        for _ in 0..<500 where pagerDuty.received.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
        let trigger = try JSONSerialization.jsonObject(with: Data(try #require(pagerDuty.received.first).body.utf8)) as? [String: Any]
        #expect(trigger?["event_action"] as? String == "trigger")
        let dedupKey = try #require(trigger?["dedup_key"] as? String)
        #expect(dedupKey.hasPrefix("flow-failures/prefect.deployment."))
        #expect(((trigger?["payload"] as? [String: Any])?["summary"] as? String)?.contains("failed: exited with status 1") == true, "\(trigger ?? [:])")

        _ = try await server.request("POST", "/api/events", json: TestEvent.array([Self.requested(2, ok: "yes")]))
        for _ in 0..<500 where pagerDuty.received.count < 2 { try await Task.sleep(for: .milliseconds(20)) }
        let resolve = try JSONSerialization.jsonObject(with: Data(try #require(pagerDuty.received.dropFirst().first).body.utf8)) as? [String: Any]
        #expect(resolve?["event_action"] as? String == "resolve")
        #expect(resolve?["dedup_key"] as? String == dedupKey, "the resolve names the incident the trigger opened")
        #expect(pagerDuty.received.count == 2)

        // The runs, through the API and the command line.
        let (status, listed) = try await server.json("GET", "/api/runs?deployment=nightly")
        #expect(status == 200)
        let runs = listed as? [[String: Any]] ?? []
        #expect(runs.compactMap { $0["state_name"] as? String } == ["Completed", "Failed"])
        let failedID = try #require(runs.last?["id"] as? String)
        let failedOnly = try await server.json("GET", "/api/runs?state=Failed").1 as? [[String: Any]]
        #expect(failedOnly?.count == 1)
        let (_, shown) = try await server.json("GET", "/api/runs/\(failedID)")
        #expect((shown as? [String: Any])?["exit_code"] as? Int == 1)
        #expect(((shown as? [String: Any])?["parameters"] as? [String: String]) == ["ok": "no"])
        let (logStatus, log) = try await server.request("GET", "/api/runs/\(failedID)/logs")
        #expect(logStatus == 200)
        #expect(String(decoding: log, as: UTF8.self).contains(#"parameters: {"ok":"no"}"#))
        #expect(try await server.json("GET", "/api/runs?state=Nonsense").0 == 422)
        #expect(try await server.json("GET", "/api/runs/not-a-uuid").0 == 422)
        #expect(try await server.json("GET", "/api/runs/\(UUID().uuidString)").0 == 404)

        let metrics = String(decoding: try await server.request("GET", "/metrics").1, as: UTF8.self)
        for line in ["tripline_flow_runs_started_total", "tripline_flow_runs_finished_total", "tripline_flow_runs_running"] {
            #expect(metrics.contains(line), "\(line) in /metrics")
        }
        #expect(metrics.split(separator: "\n").contains { $0.hasPrefix("tripline_flow_runs_finished_total") && $0.contains("Failed") && $0.hasSuffix(" 1") })
        let listedByCommand = try server.command(["runs", "ls", "--deployment", "nightly"])
        #expect(listedByCommand.0 == 0 && listedByCommand.1.contains(failedID) && listedByCommand.1.contains("Failed"), "\(listedByCommand.1)")
        let shownByCommand = try server.command(["runs", "show", failedID])
        #expect(shownByCommand.0 == 0 && shownByCommand.1.contains("exited with status 1"), "\(shownByCommand.1)")
        let logsByCommand = try server.command(["runs", "logs", failedID])
        #expect(logsByCommand.0 == 0 && logsByCommand.1.contains("parameters:"), "\(logsByCommand.1)")
        try await server.stop()
        pagerDuty.stop()
    }
}

@Suite struct LocalRunnerRestartTests {
    @Test func afterKill9TheRunningRunIsCrashedAndTheWaitingOneStarts() async throws {
        let server = try ServerProcess(rules: [
            "deployments/slow.yaml": """
                name: slow
                command: [sleep, "30"]
                concurrency_limit: 1
                """,
            "automations/run.yaml": """
                name: run slow
                trigger: {type: event, posture: Reactive, expect: [job.requested], threshold: 1, within: 0}
                actions: [{type: run-deployment, source: selected, deployment: slow}]
                """,
        ])
        try await server.start()
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.requested"), TestEvent.json(2, "job.requested")]))
        func runs() async throws -> [[String: Any]] { (try await server.json("GET", "/api/runs").1 as? [[String: Any]]) ?? [] }
        func states() async throws -> [String] { try await runs().compactMap { $0["state_name"] as? String }.sorted() }
        for _ in 0..<500 where try await states() != ["Running", "Scheduled"] { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await states() == ["Running", "Scheduled"], "one runs, the other waits for the concurrency limit")
        let first = try #require(try await runs().first { $0["state_name"] as? String == "Running" })
        let firstID = try #require(first["id"] as? String)
        try await server.kill9()
        if let pid = first["pid"] as? Int { kill(pid_t(pid), SIGKILL) }
        try await server.start()
        for _ in 0..<500 where try await states() != ["Crashed", "Running"] { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await states() == ["Crashed", "Running"])
        let crashed = try #require(try await runs().first { $0["id"] as? String == firstID })
        #expect(crashed["state_name"] as? String == "Crashed")
        let (_, page) = try await server.json(
            "POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["prefect.flow-run.Crashed"]}}, "order": "ASC"}"#)
        let events = (page as? [String: Any])?["events"] as? [[String: Any]] ?? []
        #expect(events.count == 1)
        #expect((events.first?["resource"] as? [String: String])?["prefect.resource.id"] == "prefect.flow-run.\(firstID)")
        // A graceful stop terminates the run still running: it ends Crashed too.
        try await server.stop()
        try await server.start()
        let after = try await runs()
        #expect(after.allSatisfy { ["Crashed"].contains($0["state_name"] as? String) }, "a graceful stop ends the running run Crashed: \(after.map { $0["state_name"] ?? "" })")
        try await server.stop()
    }
}
