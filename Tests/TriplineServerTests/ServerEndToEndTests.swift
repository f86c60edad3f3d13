import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

let twiceInAMinute = """
    name: twice in a minute
    trigger: {type: event, posture: Reactive, expect: [job.failed], for_each: [prefect.resource.id], threshold: 2, within: 60}
    actions: [{type: do-nothing}]
    """

@Suite(.serialized) struct ServerEndToEndTests {
    func firings(_ server: ServerProcess) async throws -> [[String: Any]] {
        let (status, body) = try await server.json("GET", "/api/firings")
        #expect(status == 200)
        return body as? [[String: Any]] ?? []
    }

    @Test func postedEventsAreStoredAndFireAndTheTriggeredEventIsQueryable() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        let (status, _) = try await server.request(
            "POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.failed", resource: "job.a"), TestEvent.json(2, "job.failed", resource: "job.a")]))
        #expect(status == 204)
        let fired = try await firings(server)
        #expect(fired.count == 1)
        #expect(fired.first?["automation"] as? String == "twice in a minute")
        #expect(fired.first?["triggering_event"] as? String == TestEvent.id(2))
        let (_, page) = try await server.json("POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["prefect.automation.triggered"]}}}"#)
        let events = (page as? [String: Any])?["events"] as? [[String: Any]] ?? []
        #expect(events.count == 1)
        let related = events.first?["related"] as? [[String: String]]
        #expect(related?.first?["prefect.resource.id"] == "prefect.event.\(TestEvent.id(2))")
        #expect(related?.first?["prefect.resource.role"] == "triggering-event")
        try await server.stop()
    }

    @Test func duplicatesAreStoredOnceAndCountedOnce() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        let event = TestEvent.json(7, "job.failed", resource: "job.b")
        for _ in 0..<3 { _ = try await server.request("POST", "/api/events", json: TestEvent.array([event])) }
        #expect(try await firings(server).isEmpty, "the same event three times is one event, not three")
        let (_, page) = try await server.json("POST", "/api/events/filter", json: #"{"filter": {"id": {"id": ["\#(TestEvent.id(7))"]}}}"#)
        #expect((page as? [String: Any])?["total"] as? Int == 1)
        try await server.stop()
    }

    @Test func anOpenWindowSurvivesARestartAndAKill() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.failed", resource: "job.c")]))
        try await server.kill9()
        try await server.start()
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(2, "job.failed", resource: "job.c")]))
        let fired = try await firings(server)
        #expect(fired.count == 1, "the first event's window was kept across kill -9")
        try await server.stop()
    }

    @Test func everyAcknowledgedEventIsStoredExactlyOnceAfterKillDuringABurst() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        let acknowledged = AcknowledgedIDs()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for batch in 0..<1000 {
                        let base = 1_000_000 + worker * 100_000 + batch * 10
                        let events = (0..<10).map { TestEvent.json(base + $0, "burst.event", resource: "burst.\(worker)") }
                        guard let (status, _) = try? await server.request("POST", "/api/events", json: TestEvent.array(events)) else { return }
                        if status == 204 { await acknowledged.add(events.map { $0["id"] as! String }) } else { return }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(700))
                try await server.kill9()
            }
            try await group.waitForAll()
        }
        let ids = await acknowledged.ids
        #expect(ids.count > 0, "some events were acknowledged before the kill")
        try await server.start()
        // Every acknowledged id is stored exactly once (ids are unique in the table, so count them).
        var found = 0
        for chunk in stride(from: 0, to: ids.count, by: 200) {
            let slice = Array(ids[chunk..<min(chunk + 200, ids.count)])
            let filter = #"{"filter": {"id": {"id": \#(String(decoding: try JSONSerialization.data(withJSONObject: slice), as: UTF8.self))}}, "limit": 0}"#
            let (_, page) = try await server.json("POST", "/api/events/filter", json: filter)
            found += (page as? [String: Any])?["total"] as? Int ?? 0
        }
        #expect(found == ids.count, "acknowledged \(ids.count), found \(found) after kill -9 and restart")
        try await server.stop()
    }

    @Test func badInputGetsAClearClientErrorAndStoresNothing() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start(extraArguments: ["--max-body-size", "4096"])
        let cases: [(String, String, Int, String)] = [
            ("/api/events", "{not json", 400, "not valid JSON"),
            ("/api/events", #""a string""#, 422, "JSON array of events"),
            ("/api/events", TestEvent.array([["id": "nope"]]), 422, "events[0].id"),
            ("/api/events", TestEvent.array([TestEvent.json(1, "ok"), ["id": TestEvent.id(2), "occurred": "2024-01-01T00:00:00Z", "event": "x", "resource": ["prefect.resource.id": "r", "n": 1]]]), 422, "events[1].resource[\"n\"]"),
            ("/api/events", TestEvent.array([TestEvent.json(3, String(repeating: "x", count: 5000))]), 413, "larger than the limit"),
            ("/api/automations", #"{"name": "x", "trigger": {"type": "event", "posture": "Reactive", "expects": ["a"]}, "actions": []}"#, 422, "unknown field \"expects\""),
            ("/api/events/filter", #"{"filter": {"occurred": {"since": "yesterday"}}}"#, 422, "filter.occurred.since"),
            // Numbers no integer can hold, and wrong types, in every place a client sends a number or a filter: each a
            // 422 naming the field (these used to stop the process).
            ("/api/events/count-by/time", #"{"time_interval": 1e300}"#, 422, "time_interval"),
            ("/api/events/count-by/time", #"{"time_interval": "x"}"#, 422, "time_interval: must be a number"),
            ("/api/automations/filter", #"{"limit": 1e300}"#, 422, "limit: must be a whole number"),
            ("/api/automations/filter", #"{"offset": -1e300}"#, 422, "offset: must be a whole number"),
            ("/api/automations/filter", #"{"automations": {"name": {"any_": "x"}}}"#, 422, "automations.name.any_"),
            ("/api/automations/filter", #"{"automations": {"id": {"any_": ["nope"]}}}"#, 422, "automations.id.any_[0]"),
            ("/api/automations/filter", "{bad", 400, "not valid JSON"),
            ("/api/automations/count", "{bad", 400, "not valid JSON"),
            // A window no arithmetic survives is refused instead of stored (it used to crash every later start).
            ("/api/automations", #"{"name": "x", "trigger": {"type": "event", "posture": "Proactive", "expect": ["a"], "within": 1e300}, "actions": []}"#, 422, "at most ten years"),
            ("/api/automations", #"{"name": "x", "trigger": {"type": "event", "posture": "Reactive", "expect": ["a"], "within": 9223372036854775807}, "actions": []}"#, 422, "at most ten years"),
        ]
        for (path, body, expectedStatus, expectedText) in cases {
            let (status, data) = try await server.request("POST", path, json: body)
            let text = String(decoding: data, as: UTF8.self)
            let detail = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["detail"] as? String
            #expect(status == expectedStatus, "\(path) \(body.prefix(80)) → \(status) \(text)")
            #expect(detail?.contains(expectedText) == true, "errors are {\"detail\": ...} naming the problem: \(text)")
        }
        let (_, page) = try await server.json("POST", "/api/events/filter", json: #"{"filter": {"occurred": {"since": "2000-01-01T00:00:00Z"}}}"#)
        #expect((page as? [String: Any])?["total"] as? Int == 0, "nothing of a rejected request is stored")
        let (listed, list) = try await server.json("POST", "/api/automations/filter")
        #expect(listed == 200 && (list as? [Any])?.count == 1, "an empty filter body lists every automation; no refused automation was stored")
        try await server.stop()
    }

    /// `next_page` links walk every event once; PUT replaces an API automation; SIGHUP reloads the rules even when
    /// the files look unchanged to the watcher (same size and modification time).
    @Test func eventPagesAutomationReplacementAndReloadOnSIGHUP() async throws {
        let rule = "name: rule one\ntrigger: {type: event, posture: Reactive, expect: [a.b]}\nactions: [{type: do-nothing}]\n"
        let server = try ServerProcess(rules: ["one.yaml": rule])
        try await server.start()
        let events = (0..<120).map { TestEvent.json(200 + $0, "page.test", occurred: Date().addingTimeInterval(Double(-$0))) }
        #expect(try await server.request("POST", "/api/events", json: TestEvent.array(events)).0 == 204)
        var seen: [String] = []
        var (_, page) = try await server.json("POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["page.test"]}}, "limit": 50}"#)
        while true {
            let object = page as? [String: Any] ?? [:]
            seen += (object["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            guard let next = object["next_page"] as? String, let url = URL(string: next) else { break }
            (_, page) = try await server.json("GET", url.path + "?" + (url.query ?? ""))
        }
        #expect(seen.count == 120 && Set(seen).count == 120, "every event once over three pages: \(seen.count)")

        let created = #"{"name": "first name", "trigger": {"type": "event", "posture": "Reactive", "expect": ["x"]}, "actions": [{"type": "do-nothing"}]}"#
        let (_, body) = try await server.json("POST", "/api/automations/", json: created)
        let id = (body as? [String: Any])?["id"] as? String ?? ""
        let replacement = #"{"name": "second name", "trigger": {"type": "event", "posture": "Reactive", "expect": ["y"]}, "actions": [{"type": "do-nothing"}]}"#
        #expect(try await server.request("PUT", "/api/automations/\(id)", json: replacement).0 == 204)
        let (_, replaced) = try await server.json("GET", "/api/automations/\(id)")
        #expect((replaced as? [String: Any])?["name"] as? String == "second name")
        #expect(((replaced as? [String: Any])?["trigger"] as? [String: Any])?["expect"] as? [String] == ["y"])

        // Same size, same modification time: only SIGHUP makes the server read the file again.
        let file = server.folder.appendingPathComponent("rules/one.yaml")
        let fixed = Date(timeIntervalSince1970: 1_700_000_000)
        try FileManager.default.setAttributes([.modificationDate: fixed], ofItemAtPath: file.path)
        try await Task.sleep(for: .seconds(2.5))  // the watcher takes this as the files' state (and reloads the same rule)
        try rule.replacingOccurrences(of: "rule one", with: "rule two").write(to: file, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: fixed], ofItemAtPath: file.path)
        func ruleNames() async throws -> [String] {
            let (_, list) = try await server.json("POST", "/api/automations/filter", json: "{}")
            return (list as? [[String: Any]] ?? []).filter { $0["read_only"] as? Bool == true }.compactMap { $0["name"] as? String }
        }
        try await Task.sleep(for: .seconds(2.5))
        #expect(try await ruleNames() == ["rule one"], "the watcher sees no change")
        kill(try #require(server.process).processIdentifier, SIGHUP)
        var names: [String] = []
        for _ in 0..<50 {
            names = try await ruleNames()
            if names == ["rule two"] { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(names == ["rule two"], "SIGHUP reloaded the rules")
        try await server.stop()
    }

    /// count-by counts every matching event (more than one page of the store's reads), by event, resource and time.
    @Test func countByCountsEveryMatchingEvent() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        let start = Date().addingTimeInterval(-3600)
        for batch in 0..<25 {
            let events = (0..<1000).map { index in
                let number = batch * 1000 + index
                return TestEvent.json(
                    100_000 + number, number % 5 == 0 ? "count.rare" : "count.common", occurred: start.addingTimeInterval(Double(number) / 10),
                    resource: "count.r\(number % 3)")
            }
            #expect(try await server.request("POST", "/api/events", json: TestEvent.array(events)).0 == 204)
        }
        let since = #"{"filter": {"occurred": {"since": "2000-01-01T00:00:00Z"}, "event": {"prefix": ["count."]}}"#
        let (status, byEvent) = try await server.json("POST", "/api/events/count-by/event", json: since + "}")
        #expect(status == 200)
        let counts = Dictionary(uniqueKeysWithValues: (byEvent as? [[String: Any]] ?? []).map { ($0["value"] as? String ?? "", $0["count"] as? Int ?? 0) })
        #expect(counts == ["count.common": 20_000, "count.rare": 5_000])
        let (_, byResource) = try await server.json("POST", "/api/events/count-by/resource", json: since + "}")
        #expect((byResource as? [[String: Any]])?.compactMap { $0["count"] as? Int }.reduce(0, +) == 25_000)
        let (_, byTime) = try await server.json("POST", "/api/events/count-by/time", json: since + #", "time_unit": "hour", "time_interval": 2}"#)
        #expect((byTime as? [[String: Any]])?.compactMap { $0["count"] as? Int }.reduce(0, +) == 25_000)
        try await server.stop()
    }

    /// Requests beyond the ingest budget wait their turn and are all stored; one larger than the budget goes alone.
    @Test func ingestBeyondTheBudgetWaitsAndLosesNothing() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        // Durable commits (an fsync each) keep each request in the budget long enough for the others to overlap it.
        try await server.start(extraArguments: ["--ingest-budget", "4096", "--synchronous", "FULL"])
        let statuses = try await server.concurrently(clients: 16, requests: 10) { client, batch in
            // About 2.5 KB per request: at most one more fits beside it.
            let base = 500_000 + client * 1_000 + batch * 10
            let events = (0..<10).map { TestEvent.json(base + $0, "budget.event", resource: "budget.\(client)") }
            return try await server.request("POST", "/api/events", json: TestEvent.array(events)).0
        }
        #expect(statuses.count == 160)
        #expect(statuses.allSatisfy { $0 == 204 })
        let large = (0..<40).map { TestEvent.json(600_000 + $0, "budget.event", resource: "budget.large") }
        #expect(try await server.request("POST", "/api/events", json: TestEvent.array(large)).0 == 204)
        let (_, page) = try await server.json("POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["budget.event"]}}, "limit": 0}"#)
        #expect((page as? [String: Any])?["total"] as? Int == 1_640)
        #expect(try await server.metric("tripline_ingest_budget_waits_total") ?? 0 > 0, "16 clients over a budget of about two requests wait")
        try await server.stop()
    }

    /// Resource ids with slashes reach related-to (Prefect's `{resource_id:path}`), and a path no route serves gets
    /// a JSON detail like every other error.
    @Test func relatedToTakesResourceIdsWithSlashesAndUnknownRoutesAnswerJSON() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        let created = #"{"name": "repo", "trigger": {"type": "event", "posture": "Reactive", "expect": ["x"], "match": {"prefect.resource.id": "github.repository.acme/api"}}, "actions": [{"type": "do-nothing"}]}"#
        #expect(try await server.request("POST", "/api/automations/", json: created).0 == 201)
        for path in ["github.repository.acme/api", "github.repository.acme%2Fapi"] {
            let (status, list) = try await server.json("GET", "/api/automations/related-to/\(path)")
            #expect(status == 200)
            #expect((list as? [[String: Any]])?.map { $0["name"] as? String } == ["repo"], "\(path): \(list)")
        }
        let (unrelated, none) = try await server.json("GET", "/api/automations/related-to/github.repository.acme/web")
        #expect(unrelated == 200 && (none as? [Any])?.isEmpty == true)
        let (missing, detail) = try await server.json("GET", "/api/nope")
        #expect(missing == 404)
        #expect(((detail as? [String: Any])?["detail"] as? String)?.contains("GET /api/nope") == true, "\(detail)")
        try await server.stop()
    }

    /// The benchmark's routes exist only when asked for; the checking one refuses what ingest refuses and stores
    /// nothing it accepts.
    @Test func benchmarkRoutesAreOffByDefaultAndTheCheckingOneStoresNothing() async throws {
        let plain = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await plain.start()
        let event = TestEvent.array([TestEvent.json(1, "bench.checked")])
        #expect(try await plain.request("POST", "/api/bench/parse", json: event).0 == 404)
        #expect(try await plain.request("POST", "/api/bench/noop", json: event).0 == 404)
        try await plain.stop()

        let bench = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        bench.environment["TRIPLINE_BENCH_ROUTES"] = "1"
        try await bench.start()
        #expect(try await bench.request("POST", "/api/bench/parse", json: event).0 == 204)
        let (status, detail) = try await bench.json("POST", "/api/bench/parse", json: TestEvent.array([["id": "nope"]]))
        #expect(status == 422)
        #expect(((detail as? [String: Any])?["detail"] as? String)?.contains("events[0].id") == true, "\(detail)")
        let (_, found) = try await bench.json("POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["bench.checked"]}}}"#)
        #expect(((found as? [String: Any])?["total"] as? Int) == 0, "\(found)")
        #expect(try await bench.request("POST", "/api/events", json: event).0 == 204)
        let (_, stored) = try await bench.json("POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["bench.checked"]}}}"#)
        #expect(((stored as? [String: Any])?["total"] as? Int) == 1, "the same event through ingest is stored: \(stored)")
        try await bench.stop()
    }

    @Test func automationsFromRulesAreReadOnlyAndApiAutomationsPersist() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        let (_, list) = try await server.json("POST", "/api/automations/filter", json: "{}")
        let rules = list as? [[String: Any]] ?? []
        #expect(rules.count == 1)
        #expect(rules.first?["read_only"] as? Bool == true)
        let ruleID = rules.first?["id"] as? String ?? ""
        let (deleteStatus, deleteBody) = try await server.request("DELETE", "/api/automations/\(ruleID)")
        #expect(deleteStatus == 403)
        #expect(String(decoding: deleteBody, as: UTF8.self).contains("twice.yaml"))
        let created = #"{"name": "api made", "trigger": {"type": "event", "posture": "Reactive", "expect": ["x.y"]}, "actions": [{"type": "do-nothing"}]}"#
        let (createStatus, body) = try await server.json("POST", "/api/automations/", json: created)
        #expect(createStatus == 201)
        let id = (body as? [String: Any])?["id"] as? String ?? ""
        #expect(try await server.request("PATCH", "/api/automations/\(id)", json: #"{"enabled": false}"#).0 == 204)
        try await server.stop()
        try await server.start()
        let (status, again) = try await server.json("GET", "/api/automations/\(id)")
        #expect(status == 200)
        #expect((again as? [String: Any])?["name"] as? String == "api made")
        #expect((again as? [String: Any])?["enabled"] as? Bool == false)
        let (_, count) = try await server.json("POST", "/api/automations/count", json: "{}")
        #expect(count as? Int == 2)
        #expect(try await server.request("DELETE", "/api/automations/\(id)").0 == 204)
        #expect(try await server.request("GET", "/api/automations/\(id)").0 == 404)
        try await server.stop()
    }

    @Test func tokensAreRequiredAndScoped() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        let tokens = server.folder.appendingPathComponent("tokens")
        try "# tokens\ningest ingest-token-0123456789 collector\nadmin admin-token-0123456789 ops\n".write(to: tokens, atomically: true, encoding: .utf8)
        server.environment["TRIPLINE_API_TOKENS_FILE"] = tokens.path
        try await server.start()
        let event = TestEvent.array([TestEvent.json(1, "job.failed")])
        #expect(try await server.request("POST", "/api/events", json: event).0 == 401)
        #expect(try await server.request("POST", "/api/events", json: event, headers: ["Authorization": "Bearer wrong-token-0123456789"]).0 == 401)
        #expect(try await server.request("POST", "/api/events", json: event, headers: ["Authorization": "Bearer ingest-token-0123456789"]).0 == 204)
        #expect(try await server.request("POST", "/api/events/filter", json: "{}", headers: ["Authorization": "Bearer ingest-token-0123456789"]).0 == 403)
        let basic = "Basic " + Data("prefect:admin-token-0123456789".utf8).base64EncodedString()
        #expect(try await server.request("POST", "/api/events/filter", json: "{}", headers: ["Authorization": basic]).0 == 200)
        #expect(try await server.request("GET", "/healthz").0 == 200, "probes need no token")
        // The local runner's runs need the read scope.
        #expect(try await server.request("GET", "/api/runs").0 == 401)
        #expect(try await server.request("GET", "/api/runs", headers: ["Authorization": "Bearer ingest-token-0123456789"]).0 == 403)
        #expect(try await server.request("GET", "/api/runs", headers: ["Authorization": "Bearer admin-token-0123456789"]).0 == 200)
        #expect(!server.log().contains("0123456789"), "no token appears in the log")
        try await server.stop()
    }

    @Test func refusesToListenBeyondLoopbackWithoutTokens() async throws {
        let (status, output) = try ServerProcess.command(
            ["serve", "--host", "0.0.0.0", "--port", "4999", "--database", "/tmp/never-\(UUID().uuidString).sqlite", "--rules", "/nonexistent"])
        #expect(status != 0)
        #expect(output.contains("refusing to listen on 0.0.0.0 without API tokens"))
    }

    @Test func rulesAreReloadedOnChangeAndABrokenFileKeepsTheRunningSet() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start(extraArguments: [])
        let rules = server.folder.appendingPathComponent("rules")
        try "name: second\ntrigger: {type: event, posture: Reactive, expect: [b]}\nactions: []\n".write(
            to: rules.appendingPathComponent("second.yaml"), atomically: true, encoding: .utf8)
        var count = 0
        for _ in 0..<100 {
            count = (try await server.json("POST", "/api/automations/count", json: "{}").1 as? Int) ?? 0
            if count == 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(count == 2, "a new rules file is picked up")
        try "name: broken\ntrigger: {type: event, posture: Sideways}\nactions: []\n".write(
            to: rules.appendingPathComponent("broken.yaml"), atomically: true, encoding: .utf8)
        try await Task.sleep(for: .seconds(3))
        #expect((try await server.json("POST", "/api/automations/count", json: "{}").1 as? Int) == 2, "the running set is kept")
        #expect(server.log().contains("broken.yaml:2:"), "the error is logged with file:line")
        #expect(try await server.request("GET", "/readyz").0 == 200)
        try await server.stop()
    }
}

extension ServerEndToEndTests {
    @Test func aPendingProactiveDeadlineSurvivesKillAndFiresOnTime() async throws {
        let server = try ServerProcess(rules: [
            "sla.yaml": """
                name: job not finished in 10 s
                trigger: {type: event, posture: Proactive, after: [job.started], expect: [job.finished], for_each: [prefect.resource.id], within: 10}
                actions: [{type: do-nothing}]
                """
        ])
        try await server.start()
        let started = Date()
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.started", occurred: started, resource: "job.x")]))
        try await Task.sleep(for: .seconds(1))
        try await server.kill9()
        try await server.start()
        var firedAt: Date?
        while Date().timeIntervalSince(started) < 14 {
            if let fired = try? await firings(server), !fired.isEmpty {
                firedAt = Date()
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let observed = try #require(firedAt, "the proactive firing never came after the restart")
        let lateness = observed.timeIntervalSince(started) - 10
        #expect(lateness > -0.05, "it did not fire before the window ended")
        #expect(lateness < 1.0, "it fired within a second of the window's end (polling every 20 ms), was \(lateness) s late")
        try await server.stop()
    }

    /// The proactive scheduler sleeps until the deadline it knows; a commit that brings an earlier one must wake it.
    @Test func anEarlierDeadlineArrivingWhileTheSchedulerSleepsFiresOnTime() async throws {
        let server = try ServerProcess(rules: [
            "slow.yaml": """
                name: slow job not finished in 60 s
                trigger: {type: event, posture: Proactive, after: [slow.started], expect: [slow.finished], for_each: [prefect.resource.id], within: 60}
                actions: [{type: do-nothing}]
                """,
            "fast.yaml": """
                name: fast job not finished in 10 s
                trigger: {type: event, posture: Proactive, after: [fast.started], expect: [fast.finished], for_each: [prefect.resource.id], within: 10}
                actions: [{type: do-nothing}]
                """,
        ])
        try await server.start()
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "slow.started", occurred: Date(), resource: "job.slow")]))
        // Let the scheduler settle into waiting for the 60 s deadline.
        try await Task.sleep(for: .milliseconds(300))
        // The fast job started 8 s ago (its window ends 2 s from now): the report came late.
        let started = Date()
        let occurred = started.addingTimeInterval(-8)
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(2, "fast.started", occurred: occurred, resource: "job.fast")]))
        var fired: [[String: Any]] = []
        while Date().timeIntervalSince(started) < 6 {
            fired = (try? await firings(server)) ?? []
            if !fired.isEmpty { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let lateness = Date().timeIntervalSince(started) - 2
        #expect(fired.first?["automation"] as? String == "fast job not finished in 10 s")
        #expect(lateness > -0.05, "it did not fire before the window ended")
        #expect(lateness < 1.0, "the deadline 2 s away fired \(lateness) s late")
        try await server.stop()
    }

    @Test func retentionDeletesEventsReceivedLongAgoAndTheConfigFileIsRead() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        let config = server.folder.appendingPathComponent("tripline.yaml")
        try "retention: 3s\nlog_level: debug\n".write(to: config, atomically: true, encoding: .utf8)
        server.environment["TRIPLINE_CONFIG"] = config.path
        try await server.start()
        // Both events occurred days ago; retention counts from when they were received.
        let old = Date().addingTimeInterval(-3 * 86_400)
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "early.event", occurred: old)]))
        try await Task.sleep(for: .milliseconds(3500))
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(2, "late.event", occurred: old)]))
        let all = #"{"filter": {"occurred": {"since": "2000-01-01T00:00:00Z"}}}"#
        #expect((try await server.json("POST", "/api/events/filter", json: all).1 as? [String: Any])?["total"] as? Int == 2)
        try await server.stop()
        try await server.start()  // retention runs at start, then hourly
        var names: [String] = []
        for _ in 0..<50 {
            let events = (try await server.json("POST", "/api/events/filter", json: all).1 as? [String: Any])?["events"] as? [[String: Any]] ?? []
            names = events.compactMap { $0["event"] as? String }
            if names.count == 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(names == ["late.event"], "the event received more than 3 s ago was deleted, the one received since kept")
        #expect(server.log().contains("debug"), "log_level from the config file applies")
        try await server.stop()
    }

    @Test func actionsOnTriggerRunWithTheActions() async throws {
        let server = try ServerProcess(rules: [
            "both.yaml": """
                name: both lists
                trigger: {type: event, posture: Reactive, expect: [job.done]}
                actions: [{type: do-nothing}]
                actions_on_trigger: [{type: do-nothing}, {type: do-nothing}]
                actions_on_resolve: [{type: do-nothing}]
                """
        ])
        try await server.start()
        let (status, _) = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.done")]))
        #expect(status == 204)
        var deliveries: [[String: Any]] = []
        for _ in 0..<100 {
            deliveries = (try await server.json("GET", "/api/deliveries").1 as? [[String: Any]]) ?? []
            if deliveries.count >= 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(deliveries.count == 3, "one action and two actions_on_trigger run; actions_on_resolve does not")
        #expect(Set(deliveries.compactMap { $0["action_index"] as? Int }) == [0, 1, 2])
        try await server.stop()
    }

    @Test func metricsCountWhatHappened() async throws {
        let server = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await server.start()
        _ = try await server.request(
            "POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.failed", resource: "job.m"), TestEvent.json(2, "job.failed", resource: "job.m")]))
        _ = try await server.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.failed", resource: "job.m")]))
        _ = try await server.request("POST", "/api/events", json: "[{}]")
        // The firing's do-nothing action runs in the background; its two action events are stored too.
        var text = ""
        func value(_ name: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        for _ in 0..<100 {
            let (status, data) = try await server.request("GET", "/metrics")
            #expect(status == 200)
            text = String(decoding: data, as: UTF8.self)
            if value("tripline_events_stored_total") == 5 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(value("tripline_events_received_total") == 3, "events from clients; the action layer's own events are not counted here")
        #expect(value("tripline_events_stored_total") == 5, "two events, the automation's triggered event, the action's triggered and executed events")
        #expect(value("tripline_actions_delivered_total") == 1)
        #expect(value("tripline_events_duplicate_total") == 1)
        #expect(value("tripline_firings_total") == 1)
        #expect((value("tripline_trigger_evaluations_total") ?? 0) >= 2)
        #expect(text.contains("tripline_events_rejected_total{reason=\"invalid\"} 1"))
        #expect(text.contains("tripline_evaluation_seconds_bucket"))
        // What the engine holds, read at the scrape: job.m's window (restarted by the firing) and the five stored ids.
        #expect(value("tripline_engine_open_buckets") == 1)
        #expect(value("tripline_engine_remembered_events") == 5)
        _ = try await server.request(
            "POST", "/api/events", json: TestEvent.array([TestEvent.json(3, "job.failed", resource: "job.n"), TestEvent.json(4, "job.failed", resource: "job.o")]))
        text = String(decoding: try await server.request("GET", "/metrics").1, as: UTF8.self)
        #expect(value("tripline_engine_open_buckets") == 3, "a window per resource")
        #expect(value("tripline_engine_remembered_events") == 7)
        try await server.stop()
    }
}

actor AcknowledgedIDs {
    var ids: [String] = []
    func add(_ more: [String]) { ids += more }
}
