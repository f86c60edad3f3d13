import Foundation
import Logging
import Testing
import TriplineTestTargets
import TriplineCore
import TriplineStorage
import TriplineTestKit

/// Both stores, each on a real database: an SQLite file, and a database on a real PostgreSQL server (see
/// ``PostgresTestServer``). Every test runs against both.
@Suite struct StoreTests {
    func open(_ location: StoreLocation) throws -> any TriplineStore {
        try location.open(logger: Logger(label: "test"))
    }

    func event(_ number: Int, _ name: String, at seconds: Double, resource: String, related: [(String, String)] = []) -> Event {
        TestEvents.event(
            number, name, at: seconds, resource: ["prefect.resource.id": resource],
            related: related.map { ["prefect.resource.id": $0.0, "prefect.resource.role": $0.1] })
    }

    /// The connection that commits syncs at the configured level. (The pool behind the store sets its writer to NORMAL
    /// when it turns on WAL mode, after the connection's own setup: FULL once held only for the readers.)
    @Test(arguments: ["FULL", "NORMAL", "normal"]) func theWriterCommitsAtTheConfiguredSynchronousLevel(level: String) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-sync-\(UUID().uuidString).sqlite").path
        var configuration = SQLiteStore.Configuration(path: path)
        configuration.synchronous = level
        let store = try SQLiteStore(configuration: configuration, logger: Logger(label: "test"))
        #expect(try store.writerSynchronous == level.uppercased())
        // Opening an existing file goes through the same setup.
        let reopened = try SQLiteStore(configuration: configuration, logger: Logger(label: "test"))
        #expect(try reopened.writerSynchronous == level.uppercased())
    }

    @Test(arguments: StoreKind.available) func storesEventsOnceAndFindsThemByRelatedAndAnyResource(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let store = try open(location)
        defer { store.close() }
        let events = [
            event(1, "prefect.flow-run.Failed", at: 0, resource: "run.1", related: [("deployment.a", "deployment"), ("flow.x", "flow")]),
            event(2, "prefect.flow-run.Completed", at: 1, resource: "run.2", related: [("deployment.b", "deployment")]),
            event(3, "github.push", at: 2, resource: "deployment.a"),
        ]
        let inserted = try await store.write { transaction in
            try events.map { try transaction.insertEvent($0, received: TestEvents.at(5)) } + [try transaction.insertEvent(events[0], received: TestEvents.at(6))]
        }
        #expect(inserted == [true, true, true, false], "the same id is stored once")
        #expect(try await store.count(table: "event_resources") == 3)

        func ids(_ json: String) async throws -> [String] {
            let filter = try EventFilter.decode(JSONValue.parse(json), now: TestEvents.at(100), applyDefaults: false)
            return try await store.events(matching: filter, limit: 50, offset: 0).events.map { String($0.id.uuidString.suffix(2)) }
        }
        #expect(try await ids(#"{"related": {"id": ["deployment.a"]}}"#) == ["01"])
        #expect(try await ids(#"{"any_resource": {"id": ["deployment.a"]}, "order": "ASC"}"#) == ["01", "03"])
        #expect(try await ids(#"{"event": {"prefix": ["prefect.flow-run."]}, "order": "ASC"}"#) == ["01", "02"])
        #expect(try await ids(#"{"related": {"role": ["flow"]}}"#) == ["01"])
        #expect(try await ids(#"{"resource": {"id_prefix": ["run."]}, "event": {"exclude_name": ["prefect.flow-run.Failed"]}}"#) == ["02"])
        let page = try await store.events(matching: EventFilter(), limit: 1, offset: 1)
        #expect(page.total == 3)
        #expect(page.events.count == 1)
    }

    /// SQLite's log is copied into the database file in the background, well before the commit-path checkpoint
    /// (thousands of pages later) would do it.
    @Test func theSQLiteLogIsCheckpointedInTheBackground() async throws {
        let location = try StoreKind.sqlite.freshLocation()
        guard case .sqlite(let path, _) = location else { return }
        let store = try open(location)
        defer { store.close() }
        let fileSize = { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0 }
        let before = fileSize()
        let padding = JSONValue.string(String(repeating: "x", count: 2_000))
        for batch in 0..<10 {
            _ = try await store.write { transaction in
                for number in 0..<50 {
                    var event = TestEvents.event(batch * 50 + number + 1, "bulk", at: 0)
                    event.payload = ["padding": padding]
                    _ = try transaction.insertEvent(event, received: TestEvents.at(0))
                }
            }
        }
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        var after = fileSize()
        for _ in 0..<50 where after < before + 500_000 {
            try await Task.sleep(for: .milliseconds(50))
            after = fileSize()
        }
        #expect(after >= before + 500_000, "the database file grew from \(before) to \(after) bytes: the log's 500 events reached it")
    }

    @Test(arguments: StoreKind.available) func retentionDeletesEventsAndTheirResources(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let store = try open(location)
        defer { store.close() }
        // The second event occurred long ago but was received late: it is kept for the full period.
        let events = [event(1, "a", at: 0, resource: "r", related: [("x", "role")]), event(2, "b", at: -5000, resource: "r", related: [("y", "role")])]
        _ = try await store.write { transaction in
            [try transaction.insertEvent(events[0], received: TestEvents.at(0)), try transaction.insertEvent(events[1], received: TestEvents.at(1000))]
        }
        #expect(try await store.deleteEvents(receivedBefore: TestEvents.at(500), limit: 100) == 1)
        #expect(try await store.count(table: "events") == 1)
        #expect(try await store.count(table: "event_resources") == 1, "the deleted event's resources went with it")
    }

    @Test(arguments: StoreKind.available) func engineStateAndAutomationsSurviveReopening(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let automation = try TestEvents.automations("name: kept\ntrigger: {type: event, posture: Reactive, expect: [x]}\nactions: []\n")[0]
        let bucket = Bucket(
            triggerID: automation.trigger.id, key: ["k"], start: TestEvents.at(0), end: TestEvents.at(60), count: 2,
            lastEvent: event(9, "x", at: 1, resource: "r"))
        do {
            let store = try open(location)
            defer { store.close() }
            try await store.write { transaction in
                try transaction.saveBuckets([(BucketAddress(trigger: bucket.triggerID, key: bucket.key), bucket)])
                try transaction.saveAuxiliaryState(["held": [], "slots": [], "parked": []])
            }
            try await store.saveAutomation(StoredAutomation(automation: automation, created: TestEvents.at(0), updated: TestEvents.at(1)))
        }
        let reopened = try open(location)
        defer { reopened.close() }
        let state = try await reopened.loadEngineState()
        #expect(state.buckets == [bucket])
        #expect(state.auxiliary?["held"] == .array([]))
        let stored = try await reopened.storedAutomations()
        #expect(stored.map(\.automation.name) == ["kept"])
        #expect(stored.first?.automation.trigger.id == automation.trigger.id)
        try await reopened.write { transaction in
            try transaction.saveBuckets([(BucketAddress(trigger: bucket.triggerID, key: bucket.key), nil)])
        }
        #expect(try await reopened.loadEngineState().buckets.isEmpty)
    }

    @Test(arguments: StoreKind.available) func aFiringIsRecordedOnceWithItsActionsInTheOutbox(kind: StoreKind) async throws {
        let location = try kind.freshLocation()
        let store = try open(location)
        defer { store.close() }
        let firing = Firing(
            automationID: UUID(), automationName: "a", triggerID: UUID(), triggeringEvent: event(1, "x", at: 0, resource: "r"), at: TestEvents.at(0))
        let actions = [Action(type: "do-nothing"), Action(type: "do-nothing")]
        try await store.write { transaction in
            try transaction.recordFiring(firing, actions: actions)
            try transaction.recordFiring(firing, actions: actions)
        }
        #expect(try await store.count(table: "firings") == 1)
        #expect(try await store.count(table: "outbox") == 2)
    }
}

extension StoreTests {
    func firing(_ number: Int, automation: UUID = UUID()) -> Firing {
        Firing(
            automationID: automation, automationName: "a", triggerID: UUID(), triggeringEvent: event(number, "x", at: Double(number), resource: "r"),
            at: Instant(seconds: Date().timeIntervalSince1970))
    }

    @Test(arguments: StoreKind.available) func outboxEntriesAreClaimedOnceFinishedAndRedriven(kind: StoreKind) async throws {
        let store = try open(try kind.freshLocation())
        defer { store.close() }
        let fired = firing(1)
        try await store.write { transaction in
            _ = try transaction.insertEvent(fired.triggeringEvent!, received: fired.at)
            try transaction.recordFiring(fired, actions: [Action(type: "do-nothing"), Action(type: "send-notification", fields: ["body": "hi"])])
        }
        let now = Instant(seconds: Date().timeIntervalSince1970 + 1)
        let claimed = try await store.claim(limit: 10, now: now)
        #expect(claimed.map(\.actionIndex).sorted() == [0, 1])
        #expect(claimed.first { $0.actionIndex == 1 }?.action.fields["body"] == "hi")
        #expect(claimed.first?.triggeringEvent?.id == fired.triggeringEvent?.id)
        #expect(try await store.claim(limit: 10, now: now).isEmpty, "claimed entries are not handed out twice")
        let attempt = DeliveryAttempt(number: 1, started: now, duration: TimeSpan(microseconds: 10_000), outcome: .failure, statusCode: 500, error: "boom")
        try await store.finish([
            OutboxResult(entryID: claimed[0].id, attempt: attempt, disposition: .dead(reason: "boom")),
            OutboxResult(entryID: claimed[1].id, attempt: nil, disposition: .retry(at: now + .seconds(60))),
        ])
        #expect(try await store.claim(limit: 10, now: now).isEmpty, "the retried entry is not due yet")
        #expect(try await store.nextDue() == now + .seconds(60))
        let dead = try #require(try await store.delivery(id: claimed[0].id))
        #expect(dead.status == .dead)
        #expect(dead.attempts.map(\.statusCode) == [500])
        #expect(try await store.deliveries(automation: fired.automationID, status: .dead, limit: 10).map(\.id) == [claimed[0].id])
        #expect(try await store.redrive(id: claimed[0].id, now: now))
        #expect(try await store.claim(limit: 10, now: now).map(\.id) == [claimed[0].id], "a re-driven entry runs again")
    }

    @Test(arguments: StoreKind.available) func webhookDeliveriesAreListedNewestFirst(kind: StoreKind) async throws {
        let store = try open(try kind.freshLocation())
        defer { store.close() }
        let deliveries = (0..<3).map { index in
            WebhookDelivery(
                id: 0, slug: index == 2 ? "other" : "github", received: TestEvents.at(Double(index)), method: "POST", status: index == 0 ? 401 : 202,
                outcome: index == 0 ? "rejected" : "accepted", code: nil, reason: index == 0 ? "bad signature" : nil, eventIDs: [TestEvents.id(index)],
                duplicates: 0, latencyMicroseconds: 100, size: 10, contentType: "application/json", requestID: "r\(index)",
                body: index == 0 ? Array("{}".utf8) : nil)
        }
        try await store.recordDeliveries(deliveries)
        let listed = try await store.deliveries(slug: "github", outcome: nil, before: nil, limit: 10)
        #expect(listed.map(\.requestID) == ["r1", "r0"])
        #expect(listed.last?.body == Array("{}".utf8))
        #expect(try await store.deliveries(slug: "github", outcome: "rejected", before: nil, limit: 10).map(\.reason) == ["bad signature"])
        let one = try #require(try await store.delivery(id: listed[0].id))
        #expect(one.eventIDs == [TestEvents.id(1)])
        #expect(try await store.deleteDeliveries(receivedBefore: TestEvents.at(1.5), limit: 10) == 2)
    }
}

/// Several processes on one PostgreSQL database, each simulated by a store of its own (its own connections).
@Suite(.enabled(if: PostgresTestServer.enabled)) struct SharedPostgresStoreTests {
    func open(_ url: String, lease: TimeSpan = .seconds(30)) throws -> PostgresStore {
        var configuration = PostgresStore.Configuration(url: url)
        configuration.leaseDuration = lease
        configuration.nodeName = "test-\(UUID().uuidString.prefix(8))"
        return try PostgresStore(configuration: configuration, logger: Logger(label: "test"))
    }

    @Test func concurrentIngestOfTheSameIdsStoresEachOnceAndQueuesItOnce() async throws {
        let url = try PostgresTestServer.freshDatabase()
        let stores = try (0..<3).map { _ in try open(url) }
        defer { for store in stores { store.close() } }
        let events = (0..<300).map { TestEvents.event($0, "load", at: Double($0), resource: ["prefect.resource.id": "r.\($0 % 7)"]) }
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for store in stores {
                group.addTask {
                    var new = 0
                    for chunk in stride(from: 0, to: events.count, by: 50) {
                        let slice = Array(events[chunk..<min(chunk + 50, events.count)])
                        new += try await store.write { try $0.insertEvents(slice, encoded: [], received: TestEvents.at(0)) }.filter { $0 }.count
                    }
                    return new
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(counts == 300, "each id is new in exactly one process")
        #expect(try await stores[0].count(table: "events") == 300)
        #expect(try await stores[0].count(table: "evaluation_queue") == 300)
        #expect(try await stores[1].tryLead())
        let taken = try await stores[1].writeAsLeader { try $0.takeQueuedEvents(limit: 1000) }
        #expect(taken.map(\.id) == events.map(\.id), "the queue hands events out once, oldest first")
        #expect(try await stores[1].writeAsLeader { try $0.takeQueuedEvents(limit: 1000) }.isEmpty)
    }

    @Test func oneProcessLeadsAndAnotherTakesOverWhenItsConnectionEnds() async throws {
        let url = try PostgresTestServer.freshDatabase()
        let first = try open(url)
        let second = try open(url)
        defer { second.close() }
        #expect(await first.tryLead())
        #expect(await first.tryLead(), "leading is stable")
        #expect(await !second.tryLead())
        await #expect(throws: (any Error).self, "only the leader writes engine state") {
            try await second.writeAsLeader { _ in 1 }
        }
        first.close()
        var tookOver = false
        for _ in 0..<50 where !tookOver {
            tookOver = await second.tryLead()
            if !tookOver { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(tookOver, "the lock is released with the leader's connection")
        #expect(try await second.writeAsLeader { _ in 1 } == 1)
    }

    @Test func outboxClaimsAreDisjointAndALapsedLeaseIsTakenOver() async throws {
        let url = try PostgresTestServer.freshDatabase()
        let first = try open(url, lease: .seconds(1))
        let second = try open(url, lease: .seconds(1))
        defer { second.close() }
        let now = Instant(seconds: Date().timeIntervalSince1970)
        try await first.write { transaction in
            for _ in 0..<20 {
                let firing = Firing(automationID: UUID(), automationName: "a", triggerID: UUID(), triggeringEvent: nil, at: now)
                try transaction.recordFiring(firing, actions: [Action(type: "do-nothing")])
            }
        }
        async let a = first.claim(limit: 15, now: now + .seconds(1))
        async let b = second.claim(limit: 15, now: now + .seconds(1))
        let (claimedA, claimedB) = try await (a, b)
        #expect(Set(claimedA.map(\.id)).isDisjoint(with: claimedB.map(\.id)))
        #expect(claimedA.count + claimedB.count == 20)
        // The second process finishes its entries; the first dies with its claims: they return after the lease, to the
        // other process.
        try await second.finish(claimedB.map { OutboxResult(entryID: $0.id, attempt: nil, disposition: .delivered) })
        first.close()
        #expect(try await second.claim(limit: 50, now: now + .seconds(1)).isEmpty)
        // Leases run on the database's clock.
        try await Task.sleep(for: .milliseconds(1300))
        let later = try await second.claim(limit: 50, now: now + .seconds(3))
        #expect(Set(later.map(\.id)) == Set(claimedA.map(\.id)))
    }

    @Test func automationChangesMoveTheVersionOthersPoll() async throws {
        let url = try PostgresTestServer.freshDatabase()
        let first = try open(url)
        let second = try open(url)
        defer {
            first.close()
            second.close()
        }
        let before = try await second.automationsVersion()
        let automation = try TestEvents.automations("name: shared\ntrigger: {type: event, posture: Reactive, expect: [x]}\nactions: []\n")[0]
        try await first.saveAutomation(StoredAutomation(automation: automation, created: TestEvents.at(0), updated: TestEvents.at(0)))
        #expect(try await second.automationsVersion() > before)
        #expect(try await second.storedAutomations().map(\.automation.name) == ["shared"])
        #expect(try await first.deleteAutomation(id: automation.id))
        #expect(try await second.storedAutomations().isEmpty)
    }

    @Test func aBadURLIsRefusedWithoutEchoingThePassword() throws {
        #expect(throws: TriplineError.self) { try PostgresStore(configuration: .init(url: "mysql://u:secretpw@h/db"), logger: Logger(label: "t")) }
        do {
            _ = try PostgresStore(configuration: .init(url: "postgres://u:secretpw@127.0.0.1:1/db?sslmode=disable"), logger: Logger(label: "t"))
            Issue.record("connecting to a closed port must fail")
        } catch {
            #expect(!"\(error)".contains("secretpw"))
            #expect("\(error)".contains("127.0.0.1:1"))
        }
    }
}

extension StoreTests {
    @Test(arguments: StoreKind.available) func flowRunsAreCreatedOncePerKeyAndListedByState(kind: StoreKind) async throws {
        let store = try open(try kind.freshLocation())
        defer { store.close() }
        let deployment = UUID()
        func run(_ key: String, at seconds: Double) -> FlowRun {
            FlowRun(
                id: UUID(), name: "run-\(key)", deploymentID: deployment, deploymentName: "d", flowID: UUID(), flowName: "f",
                parameters: ["key": .string(key)], idempotencyKey: key, state: FlowRun.State(.scheduled, at: TestEvents.at(seconds)),
                created: TestEvents.at(seconds), logPath: "/tmp/\(key).log")
        }
        let first = try await store.createFlowRun(run("a", at: 0))
        #expect(first.created)
        let again = try await store.createFlowRun(run("a", at: 1))
        #expect(!again.created)
        #expect(again.run.id == first.run.id, "a repeated idempotency key finds the run created before")
        var second = try await store.createFlowRun(run("b", at: 2)).run
        second.state = FlowRun.State(.running, at: TestEvents.at(3))
        second.pid = 4242
        second.transitions = 2
        try await store.saveFlowRun(second)
        #expect(try await store.flowRun(id: second.id)?.pid == 4242)
        #expect(try await store.flowRuns(deploymentID: deployment, stateTypes: nil, limit: 10, oldestFirst: false).map(\.name) == ["run-b", "run-a"])
        #expect(try await store.flowRuns(deploymentID: nil, stateTypes: [.running], limit: 10, oldestFirst: true).map(\.name) == ["run-b"])
        #expect(try await store.runnerFlowRuns(stateTypes: [.scheduled], limit: 10).map(\.name) == ["run-a"])
    }
}

extension SharedPostgresStoreTests {
    @Test func eachProcessRunnerSeesOnlyTheRunsItCreated() async throws {
        let url = try PostgresTestServer.freshDatabase()
        let first = try open(url)
        let second = try open(url)
        defer {
            first.close()
            second.close()
        }
        let run = FlowRun(
            id: UUID(), name: "mine", deploymentID: UUID(), deploymentName: "d", flowID: UUID(), flowName: "f", parameters: [:],
            idempotencyKey: "k", state: FlowRun.State(.scheduled, at: TestEvents.at(0)), created: TestEvents.at(0), logPath: "/tmp/k.log")
        #expect(try await first.createFlowRun(run).created)
        #expect(try await !second.createFlowRun(run).created, "the key is unique across processes")
        #expect(try await first.runnerFlowRuns(stateTypes: [.scheduled], limit: 10).map(\.name) == ["mine"])
        #expect(try await second.runnerFlowRuns(stateTypes: [.scheduled], limit: 10).isEmpty, "another process never starts it")
        #expect(try await second.flowRuns(deploymentID: nil, stateTypes: nil, limit: 10, oldestFirst: true).count == 1, "but lists it")
    }
}
