import Foundation
import Logging
import Testing
import TriplineCore
import TriplineStorage
import TriplineTestKit

/// The SQLite store on a real database file.
@Suite struct SQLiteStoreTests {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-store-\(UUID().uuidString).sqlite").path

    func open() throws -> SQLiteStore {
        try SQLiteStore(configuration: SQLiteStore.Configuration(path: path), logger: Logger(label: "test"))
    }

    func event(_ number: Int, _ name: String, at seconds: Double, resource: String, related: [(String, String)] = []) -> Event {
        TestEvents.event(
            number, name, at: seconds, resource: ["prefect.resource.id": resource],
            related: related.map { ["prefect.resource.id": $0.0, "prefect.resource.role": $0.1] })
    }

    @Test func storesEventsOnceAndFindsThemByRelatedAndAnyResource() async throws {
        let store = try open()
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

    @Test func retentionDeletesEventsAndTheirResources() async throws {
        let store = try open()
        // The second event occurred long ago but was received late: it is kept for the full period.
        let events = [event(1, "a", at: 0, resource: "r", related: [("x", "role")]), event(2, "b", at: -5000, resource: "r", related: [("y", "role")])]
        _ = try await store.write { transaction in
            [try transaction.insertEvent(events[0], received: TestEvents.at(0)), try transaction.insertEvent(events[1], received: TestEvents.at(1000))]
        }
        #expect(try await store.deleteEvents(receivedBefore: TestEvents.at(500), limit: 100) == 1)
        #expect(try await store.count(table: "events") == 1)
        #expect(try await store.count(table: "event_resources") == 1, "the deleted event's resources went with it")
    }

    @Test func engineStateAndAutomationsSurviveReopening() async throws {
        let automation = try TestEvents.automations("name: kept\ntrigger: {type: event, posture: Reactive, expect: [x]}\nactions: []\n")[0]
        let bucket = Bucket(
            triggerID: automation.trigger.id, key: ["k"], start: TestEvents.at(0), end: TestEvents.at(60), count: 2,
            lastEvent: event(9, "x", at: 1, resource: "r"))
        do {
            let store = try open()
            try await store.write { transaction in
                try transaction.saveBuckets([(BucketAddress(trigger: bucket.triggerID, key: bucket.key), bucket)])
                try transaction.saveAuxiliaryState(["held": [], "slots": [], "parked": []])
            }
            try await store.saveAutomation(StoredAutomation(automation: automation, created: TestEvents.at(0), updated: TestEvents.at(1)))
        }
        let reopened = try open()
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

    @Test func aFiringIsRecordedOnceWithItsActionsInTheOutbox() async throws {
        let store = try open()
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
