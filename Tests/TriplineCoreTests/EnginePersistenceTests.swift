import Foundation
import Testing
import TriplineCore
import TriplineTestKit

@Suite struct EnginePersistenceTests {
    func e(_ number: Int, _ name: String, at seconds: Double, _ labels: [String: String] = [:], follows: Int? = nil) -> Event {
        TestEvents.labelled(number, name, at: seconds, labels, follows: follows)
    }

    /// Runs `events` through an engine, saving its state (buckets and auxiliary state as JSON) after `splitAt`
    /// events and continuing in a new engine restored from that state, as the server does across a restart.
    func restarted(_ automations: [Automation], _ events: [Event], splitAt: Int, until: Double) throws -> [TestEvents.Fired] {
        var first = Engine(automations: automations, store: JournalingBucketStore())
        var fired: [Firing] = []
        fired += first.advance(to: TestEvents.at(0))
        for event in events.prefix(splitAt) {
            fired += first.advance(to: event.occurred)
            fired += first.process(event)
        }
        // Persist through JSON text, as the database does.
        let buckets = try first.drainBucketChanges().compactMap(\.bucket).map { try Bucket(json: JSONValue.parse($0.storageText)) }
        let auxiliary = try JSONValue.parse(first.auxiliaryState.jsonText)
        var second = Engine(automations: automations, store: JournalingBucketStore(loading: buckets))
        second.restoreAuxiliaryState(auxiliary)
        fired += second.advance(to: events.count > splitAt ? events[splitAt].occurred : TestEvents.at(until))
        for event in events.dropFirst(splitAt) {
            fired += second.advance(to: event.occurred)
            fired += second.process(event)
        }
        fired += second.advance(to: TestEvents.at(until))
        return fired.map(TestEvents.fired)
    }

    /// A bucket keeps its last event behind a reference, so that a `for_each` table's slots stay narrow; equality
    /// and hashing still look at the event itself, not at the reference.
    @Test func aBucketIsNarrowAndComparesItsEventByValue() throws {
        #expect(MemoryLayout<Bucket>.stride <= 64, "a bucket is \(MemoryLayout<Bucket>.stride) bytes wide")
        let trigger = UUID()
        func bucket(_ event: Event?) -> Bucket {
            Bucket(triggerID: trigger, key: ["a"], start: TestEvents.at(0), end: TestEvents.at(60), count: 1, lastEvent: event)
        }
        let first = bucket(e(1, "x", at: 0)), same = bucket(e(1, "x", at: 0)), other = bucket(e(2, "x", at: 0))
        #expect(first == same)
        #expect(first.hashValue == same.hashValue)
        #expect(first != other)
        #expect(first != bucket(nil))
        var changed = first
        changed.lastEvent = e(2, "x", at: 0)
        #expect(changed == other)
        #expect(first.lastEvent?.id == TestEvents.id(1), "a copy's change leaves the original alone")
        changed.lastEvent = nil
        #expect(changed.lastEvent == nil)
    }

    /// Once stored, a bucket keeps its last event as JSON; the event comes back whole, also one over Prefect's limits
    /// (a webhook route may allow more), and the bucket's stored text reads back as the same bucket.
    @Test func aStoredBucketKeepsItsEventAsJSONAndGivesItBackWhole() throws {
        var labels = ["prefect.resource.id": "host/é", "quote": #"a "b" \ c"#]
        for index in 0..<600 { labels["label.\(index)"] = "\(index)" }
        var event = TestEvents.event(
            7, "heartbeat.ü", at: 12.345678, resource: labels, related: [["prefect.resource.id": "flow.1", "prefect.resource.role": "flow"]],
            payload: ["nested": .object(["list": .array([.int(1), .double(2.5), .null, .bool(true)])]), "text": .string("line\nbreak")], follows: 3)
        event.received = TestEvents.at(13)
        let bucket = Bucket(triggerID: UUID(), key: ["host/é", "x"], start: TestEvents.at(0), end: TestEvents.at(60), count: 2, lastEvent: event)
        let stored = bucket.compacted()
        #expect(stored.lastEvent == event)
        #expect(stored == bucket)
        #expect(stored.hashValue == bucket.hashValue)
        #expect(try JSONValue.parse(stored.storageText) == JSONValue.parse(bucket.storageText))
        let text = try JSONValue.parse(bucket.storageText)
        #expect(text["trigger"] == .string(bucket.triggerID.lowercasedText))
        #expect(text["key"] == .array([.string("host/é"), .string("x")]))
        #expect(text["start"] == .int(TestEvents.at(0).microseconds))
        #expect(text["end"] == .int(TestEvents.at(60).microseconds))
        #expect(text["count"] == .int(2))
        #expect(try text["last_event"].map { try Event.decode($0, limits: .unlimited) } == event)
        #expect(try Bucket(json: JSONValue.parse(stored.storageText)) == bucket)
        let empty = Bucket(triggerID: UUID(), key: [], start: TestEvents.at(0), end: TestEvents.at(60), count: 0, lastEvent: nil)
        #expect(try Bucket(json: JSONValue.parse(empty.compacted().storageText)) == empty)
    }

    /// The server drains (and so compacts) the buckets after every commit; the engine must fire the same, with the
    /// same triggering events, as with buckets that keep their events decoded: heartbeats that restart a window,
    /// windows that inherit the last event of the one before, thresholds.
    @Test func compactedBucketsFireAsDecodedOnesDo() throws {
        let automations = try TestEvents.automations(
            proactive("silent", #"expect: ["ping"], for_each: ["prefect.resource.id"], within: 30"#) + "\n"
                + proactive("stuck", #"after: ["run.running"], expect: ["run.completed"], for_each: ["prefect.resource.id"], within: 20"#) + "\n"
                + reactive("three", #"expect: ["ping"], for_each: ["prefect.resource.id"], threshold: 3, within: 60"#))
        func ping(_ number: Int, at seconds: Double, _ host: String) -> Event {
            TestEvents.event(number, "ping", at: seconds, resource: ["prefect.resource.id": host], payload: ["n": .int(Int64(number))])
        }
        let events = [
            ping(1, at: 1, "a"), ping(2, at: 5, "b"), ping(3, at: 4, "a"), ping(4, at: 12, "a"),
            TestEvents.event(5, "run.running", at: 13, resource: ["prefect.resource.id": "run.1"]),
            ping(6, at: 40, "b"), ping(7, at: 41, "b"), ping(8, at: 100, "a"),
            TestEvents.event(9, "run.running", at: 101, resource: ["prefect.resource.id": "run.2"]),
            TestEvents.event(10, "run.completed", at: 110, resource: ["prefect.resource.id": "run.2"]),
        ]
        func run<Store: BucketStore>(_ store: Store, drain: (inout Engine<Store>) -> Void) -> [Firing] {
            var engine = Engine(automations: automations, store: store)
            var fired = engine.advance(to: TestEvents.at(0))
            for event in events {
                fired += engine.advance(to: event.occurred)
                fired += engine.process(event)
                drain(&engine)
            }
            fired += engine.advance(to: TestEvents.at(300))
            return fired
        }
        let decoded = run(InMemoryBucketStore()) { _ in }
        let compacted = run(JournalingBucketStore()) { _ = $0.drainBucketChanges() }
        #expect(decoded.count >= 5, "the scenario fires: \(decoded.map(TestEvents.fired))")
        #expect(compacted.map(TestEvents.fired) == decoded.map(TestEvents.fired))
        #expect(compacted.map(\.triggeringEvent) == decoded.map(\.triggeringEvent), "the triggering events, payloads included")
    }

    @Test func bucketsSurviveARestart() throws {
        let automations = try TestEvents.automations(reactive("two", #"expect: ["x"], threshold: 2, within: 60"#))
        let events = [e(1, "x", at: 1), e(2, "x", at: 2)]
        #expect(try restarted(automations, events, splitAt: 1, until: 100) == [TestEvents.Fired("two", event: 2, at: 2)])
    }

    @Test func compositeSlotsSurviveARestart() throws {
        let automations = try TestEvents.automations(
            """
            - name: both
              trigger: {type: compound, require: all, within: null, triggers: [{type: event, posture: Reactive, expect: [a]}, {type: event, posture: Reactive, expect: [b]}]}
              actions: []
            """)
        #expect(try restarted(automations, [e(1, "a", at: 1), e(2, "b", at: 2)], splitAt: 1, until: 10) == [TestEvents.Fired("both", event: 2, at: 2)])
    }

    @Test func parkedFollowersSurviveARestart() throws {
        let automations = try TestEvents.automations(reactive("b", #"expect: ["b"], after: ["a"], within: 60"#))
        let events = [e(2, "b", at: 5, follows: 1), e(1, "a", at: 1)]
        #expect(try restarted(automations, events, splitAt: 1, until: 100) == [TestEvents.Fired("b", event: 2, at: 5)])
    }

    @Test func heldEventsSurviveARestart() throws {
        let automations = try TestEvents.automations(
            proactive("stuck", #"after: ["run.running"], expect: ["run.completed"], for_each: ["prefect.resource.id"], within: 60"#))
        let events = [e(2, "run.completed", at: 10), e(1, "run.running", at: 5)]
        #expect(try restarted(automations, events, splitAt: 1, until: 200).isEmpty, "the held Completed still prevents the SLA firing")
    }

    @Test func windowEndsAreEvaluatedEagerlyWhenAsked() throws {
        let automations = try TestEvents.automations(
            proactive("stuck", #"after: ["run.running"], expect: ["run.completed"], for_each: ["prefect.resource.id"], within: 60"#))
        var configuration = EngineConfiguration()
        configuration.evaluateAtEveryWindowEnd = true
        var engine = Engine(automations: automations, store: InMemoryBucketStore(), configuration: configuration)
        _ = engine.advance(to: TestEvents.at(0))
        _ = engine.process(e(1, "run.running", at: 30))
        #expect(engine.nextDeadline == TestEvents.at(60), "Prefect's schedule: the next run is one `within` after the first")
        _ = engine.advance(to: TestEvents.at(60))
        #expect(engine.nextDeadline == TestEvents.at(90), "the window opened at 30 ends at 90, before the next scheduled run at 120")
        #expect(engine.advance(to: TestEvents.at(90)).map(TestEvents.fired) == [TestEvents.Fired("stuck", event: 1, at: 90)])
    }

    @Test func overdueRunsAreEvaluatedOnceAtTheAdvanceTimeWhenAsked() throws {
        let automations = try TestEvents.automations(proactive("quiet", #"expect: ["ping"], for_each: ["host"], within: 60"#))
        var configuration = EngineConfiguration()
        configuration.evaluateOverdueRunsAtAdvanceTime = true
        var engine = Engine(automations: automations, store: InMemoryBucketStore(), configuration: configuration)
        _ = engine.advance(to: TestEvents.at(0))
        _ = engine.process(e(1, "ping", at: 0, ["host": "a"]))
        // A day later: one evaluation at that time, not 1,440 windows in turn. The satisfied window rolls over to
        // start now, and fires one window later.
        #expect(engine.advance(to: TestEvents.at(86_400)).isEmpty)
        #expect(engine.advance(to: TestEvents.at(86_460)).map(TestEvents.fired) == [TestEvents.Fired("quiet", event: 1, at: 86_460)])
    }
}
