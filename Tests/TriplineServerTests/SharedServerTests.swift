import Foundation
import Testing
import TriplineTestTargets

/// Two `tripline serve` processes on one PostgreSQL database, over real sockets.
@Suite(.serialized, .enabled(if: PostgresTestServer.enabled)) struct SharedServerTests {
    func firings(_ server: ServerProcess) async throws -> [[String: Any]] {
        let (_, body) = try await server.json("GET", "/api/firings")
        return body as? [[String: Any]] ?? []
    }

    @Test func eventsPostedToEitherProcessFireOnceAndAutomationsReachTheOther() async throws {
        let url = try PostgresTestServer.freshDatabase()
        let first = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        let second = try ServerProcess(rules: ["twice.yaml": twiceInAMinute])
        try await first.start(extraArguments: ["--database-url", url])
        try await second.start(extraArguments: ["--database-url", url])

        // One event of the pair to each process, and the first again to the other (a redelivery): one firing.
        #expect(try await first.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.failed", resource: "job.a")])).0 == 204)
        #expect(try await second.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(1, "job.failed", resource: "job.a")])).0 == 204)
        #expect(try await second.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(2, "job.failed", resource: "job.a")])).0 == 204)
        #expect(try await eventually(within: 10, every: .milliseconds(100)) { try await firings(first).count == 1 }, "the leader evaluates what either process stored")
        try await Task.sleep(for: .milliseconds(500))
        let fired = try await firings(second)
        #expect(fired.count == 1, "both processes see the one firing")
        #expect(fired.first?["triggering_event"] as? String == TestEvent.id(2))
        let (_, page) = try await second.json("POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["job.failed"]}}}"#)
        #expect((page as? [String: Any])?["total"] as? Int == 2, "the redelivered event is stored once")

        let created = #"{"name": "made on the first", "trigger": {"type": "event", "posture": "Reactive", "expect": ["x.y"]}, "actions": [{"type": "do-nothing"}]}"#
        let (status, body) = try await first.json("POST", "/api/automations/", json: created)
        #expect(status == 201)
        let id = (body as? [String: Any])?["id"] as? String ?? ""
        #expect(try await eventually(within: 5, every: .milliseconds(100)) { try await second.request("GET", "/api/automations/\(id)").0 == 200 }, "reaches the other process")
        #expect(try await second.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(3, "x.y", resource: "x")])).0 == 204)
        #expect(try await eventually(within: 10, every: .milliseconds(100)) { try await firings(first).contains { $0["automation"] as? String == "made on the first" } })
        #expect(try await first.request("DELETE", "/api/automations/\(id)").0 == 204)
        #expect(try await eventually(within: 5, every: .milliseconds(100)) { try await second.request("GET", "/api/automations/\(id)").0 == 404 }, "and so does its deletion")

        // One process leads, the other follows; both say so.
        func role(_ server: ServerProcess) async throws -> String? {
            ((try await server.json("GET", "/readyz")).1 as? [String: Any])?["role"] as? String
        }
        let roles = [try await role(first), try await role(second)]
        #expect(roles.sorted { ($0 ?? "") < ($1 ?? "") } == ["follower", "leader"])
        let leader = roles[0] == "leader" ? first : second
        let other = leader === first ? second : first
        let metrics = String(decoding: try await leader.request("GET", "/metrics").1, as: UTF8.self)
        #expect(metrics.contains("tripline_evaluation_leader 1"))
        #expect(metrics.contains("tripline_evaluation_queue_depth"))

        // The leader goes away; the other process takes over the evaluation.
        try await leader.kill9()
        #expect(try await other.request("POST", "/api/events", json: TestEvent.array([TestEvent.json(4, "job.failed", resource: "job.b"), TestEvent.json(5, "job.failed", resource: "job.b")])).0 == 204)
        #expect(
            try await eventually(within: 15, every: .milliseconds(100)) { try await firings(other).filter { $0["automation"] as? String == "twice in a minute" }.count == 2 },
            "the survivor leads and fires")
        #expect(other.log().contains("now leads the evaluation"))
        #expect(try await role(other) == "leader")
        try await other.stop()
    }
}
