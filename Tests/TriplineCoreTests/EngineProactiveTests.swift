import Foundation
import Testing
import TriplineCore
import TriplineTestKit

func proactive(_ name: String, _ fields: String) -> String {
    """
    - name: \(name)
      trigger: {type: event, posture: Proactive, \(fields)}
      actions: [{type: do-nothing}]
    """
}

@Suite struct EngineProactiveTests {
    func e(_ number: Int, _ name: String, at seconds: Double, _ labels: [String: String] = [:], follows: Int? = nil) -> Event {
        TestEvents.labelled(number, name, at: seconds, labels, follows: follows)
    }

    @Test func slaFiresOnlyForTheRunThatNeverCompletes() throws {
        let automations = try TestEvents.automations(
            proactive("stuck", #"after: ["run.running"], expect: ["run.completed"], for_each: ["prefect.resource.id"], within: 60"#))
        let events = [
            e(1, "run.running", at: 0, ["prefect.resource.id": "fast"]), e(2, "run.running", at: 5, ["prefect.resource.id": "slow"]),
            e(3, "run.completed", at: 20, ["prefect.resource.id": "fast"]),
        ]
        #expect(TestEvents.replay(automations, events, until: 200) == [Fired("stuck", event: 2, at: 65)])
    }

    @Test func aCompletedThatArrivesBeforeItsRunningIsHeldAndStillCounts() throws {
        // Prefect 3.9's held events: the out-of-order Completed prevents the SLA firing.
        let automations = try TestEvents.automations(
            proactive("stuck", #"after: ["run.running"], expect: ["run.completed"], for_each: ["prefect.resource.id"], within: 60"#))
        let events = [e(2, "run.completed", at: 10, ["prefect.resource.id": "r"]), e(1, "run.running", at: 5, ["prefect.resource.id": "r"])]
        #expect(TestEvents.replay(automations, events, until: 200).isEmpty)
        // Without the held event it would fire: check the same stream without the Completed.
        #expect(TestEvents.replay(automations, [events[1]], until: 200) == [Fired("stuck", event: 1, at: 65)])
    }

    @Test func heartbeatRestartsTheWindowAndFiresWithTheLastHeartbeat() throws {
        let automations = try TestEvents.automations(
            proactive("lost", #"after: ["hb"], expect: ["hb", "run.completed"], for_each: ["prefect.resource.id"], within: 30"#))
        let beating = [e(1, "hb", at: 0), e(2, "hb", at: 20), e(3, "hb", at: 40)]
        #expect(TestEvents.replay(automations, beating, until: 200) == [Fired("lost", event: 3, at: 70)])
        let completed = beating + [e(4, "run.completed", at: 50)]
        #expect(TestEvents.replay(automations, completed, until: 200).isEmpty, "a terminal event satisfies it for good")
    }

    @Test func unkeyedWindowsTileFromServiceStartD2() throws {
        let automations = try TestEvents.automations(proactive("quiet", #"expect: ["ping"], within: 60"#))
        // Start 0: [0,60) has a ping; [60,120) is empty → fires at 120 with the inherited last event; [120,180) empty → 180.
        let events = [e(1, "ping", at: 0), e(2, "ping", at: 30)]
        let fired = TestEvents.replay(automations, events, until: 200)
        #expect(fired == [Fired("quiet", event: 2, at: 120), Fired("quiet", event: 2, at: 180)])
    }

    @Test func anEmptyFirstWindowFiresWithNoEventD2() throws {
        let automations = try TestEvents.automations(proactive("quiet", #"expect: ["ping"], within: 60"#))
        let fired = TestEvents.replay(automations, [e(1, "other", at: 0)], until: 61)
        #expect(fired == [Fired("quiet", event: nil, at: 60)])
    }

    @Test func keyedWindowsFireOncePerSilenceD3() throws {
        let automations = try TestEvents.automations(proactive("host-silent", #"expect: ["hb"], for_each: ["prefect.resource.id"], within: 60"#))
        let events = [e(1, "hb", at: 0, ["prefect.resource.id": "a"]), e(2, "hb", at: 50, ["prefect.resource.id": "a"])]
        // [−15min, 60) satisfied → [60,120) empty → fires at 120 with event 2, then the key is forgotten.
        #expect(TestEvents.replay(automations, events, until: 400) == [Fired("host-silent", event: 2, at: 120)])
    }

    @Test func keyedThresholdOneCanFireD3() throws {
        let automations = try TestEvents.automations(proactive("silent", #"expect: ["hb"], for_each: ["host"], threshold: 1, within: 30"#))
        let events = [e(1, "hb", at: 0, ["host": "a"]), e(2, "hb", at: 1, ["host": "b"]), e(3, "hb", at: 40, ["host": "b"])]
        let fired = Set(TestEvents.replay(automations, events, until: 200))
        // b: [1−15min, 31) satisfied → [31, 61) gets event 3 → [61, 91) empty → fires at 91.
        #expect(fired == [Fired("silent", event: 1, at: 60), Fired("silent", event: 3, at: 91)])
    }

    @Test func unkeyedWithAfterWaitsForItsAfterEventD4() throws {
        let automations = try TestEvents.automations(proactive("no-finish", #"after: ["start"], expect: ["finish"], within: 30"#))
        #expect(TestEvents.replay(automations, [e(1, "noise", at: 0)], until: 300).isEmpty)
        #expect(TestEvents.replay(automations, [e(1, "start", at: 10)], until: 300) == [Fired("no-finish", event: 1, at: 40)])
    }

    @Test func proactiveWithinBelowTenSecondsIsRejectedAndMissingBecomesTen() throws {
        let loaded = Automation.load(text: proactive("short", #"expect: ["x"], within: 5"#), file: "p.yaml")
        #expect(loaded.errors.count == 1)
        #expect(loaded.errors[0].description.contains("at least 10 seconds"))
        let defaulted = try TestEvents.automations(proactive("default", #"expect: ["x"]"#))
        guard case .event(let trigger) = defaulted[0].trigger else { return #expect(Bool(false)) }
        #expect(trigger.within == .seconds(10))
    }

    @Test func nextDeadlineIsTheEarliestProactiveRun() throws {
        let automations = try TestEvents.automations(proactive("quiet", #"expect: ["ping"], within: 60"#))
        var engine = Engine(automations: automations, store: InMemoryBucketStore())
        #expect(engine.advance(to: TestEvents.at(0)).isEmpty)
        #expect(engine.nextDeadline == TestEvents.at(60))
        let fired = engine.advance(to: TestEvents.at(59.9))
        #expect(fired.isEmpty)
        #expect(engine.advance(to: TestEvents.at(60)).map(TestEvents.fired) == [Fired("quiet", event: nil, at: 60)])
        #expect(engine.nextDeadline == TestEvents.at(120))
    }
}

@Suite struct EngineCompositeTests {
    func e(_ number: Int, _ name: String, at seconds: Double) -> Event { TestEvents.labelled(number, name, at: seconds, [:]) }

    func composite(_ type: String, _ extra: String, children: [String]) -> String {
        let triggers = children.map { "{type: event, posture: Reactive, expect: [\"\($0)\"]}" }.joined(separator: ", ")
        return """
            - name: combo
              trigger: {type: \(type), \(extra) triggers: [\(triggers)]}
              actions: []
            """
    }

    @Test func compoundAnyFiresOnEachChildFiring() throws {
        let automations = try TestEvents.automations(composite("compound", "require: any, within: null,", children: ["a", "b"]))
        #expect(TestEvents.replay(automations, [e(1, "a", at: 0), e(2, "b", at: 1)], until: 60) == [
            Fired("combo", event: 1, at: 0), Fired("combo", event: 2, at: 1),
        ])
    }

    @Test func compoundAllNeedsEveryChildAndAChildFiringTwiceTakesOneSlot() throws {
        let automations = try TestEvents.automations(composite("compound", "require: all, within: null,", children: ["a", "b"]))
        let events = [e(1, "a", at: 0), e(2, "a", at: 1), e(3, "b", at: 2), e(4, "b", at: 3)]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("combo", event: 3, at: 2)])
    }

    @Test func compoundRequireNWithinDropsOldChildFirings() throws {
        let automations = try TestEvents.automations(composite("compound", "require: 2, within: 10,", children: ["a", "b", "c"]))
        let events = [e(1, "a", at: 0), e(2, "b", at: 20), e(3, "c", at: 25)]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("combo", event: 3, at: 25)])
    }

    @Test func sequenceFiresOnlyInDeclaredOrder() throws {
        let automations = try TestEvents.automations(composite("sequence", "within: null,", children: ["a", "b", "c"]))
        let inOrder = [e(1, "a", at: 0), e(2, "b", at: 1), e(3, "c", at: 2)]
        #expect(TestEvents.replay(automations, inOrder, until: 60) == [Fired("combo", event: 3, at: 2)])
        let outOfOrder = [e(1, "b", at: 0), e(2, "a", at: 1), e(3, "c", at: 2)]
        #expect(TestEvents.replay(automations, outOfOrder, until: 60).isEmpty)
    }

    @Test func sequenceWithinUsesEventTime() throws {
        let automations = try TestEvents.automations(composite("sequence", "within: 10,", children: ["a", "b"]))
        #expect(TestEvents.replay(automations, [e(1, "a", at: 0), e(2, "b", at: 30)], until: 60).isEmpty)
        #expect(TestEvents.replay(automations, [e(1, "a", at: 0), e(2, "b", at: 5)], until: 60) == [Fired("combo", event: 2, at: 5)])
    }

    @Test func nestedCompositesWork() throws {
        let automations = try TestEvents.automations(
            """
            - name: nested
              trigger:
                type: sequence
                within: null
                triggers:
                  - {type: event, posture: Reactive, expect: [start]}
                  - type: compound
                    require: all
                    within: null
                    triggers:
                      - {type: event, posture: Reactive, expect: [x]}
                      - {type: event, posture: Reactive, expect: [y]}
              actions: []
            """)
        let events = [e(1, "start", at: 0), e(2, "y", at: 1), e(3, "x", at: 2)]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("nested", event: 3, at: 2)])
    }
}

/// The plain bucket store: every query scans every bucket of the trigger (what a proactive pass did before the store
/// kept an index of ends), and an ended bucket is handed out on every pass.
struct ScanningBucketStore: BucketStore {
    var buckets: [UUID: [BucketingKey: Bucket]] = [:]

    func bucket(trigger: UUID, key: BucketingKey) -> Bucket? { buckets[trigger]?[key] }
    mutating func save(_ bucket: Bucket) { buckets[bucket.triggerID, default: [:]][bucket.key] = bucket }
    mutating func remove(trigger: UUID, key: BucketingKey) { buckets[trigger]?[key] = nil }
    func buckets(trigger: UUID) -> [Bucket] {
        (buckets[trigger]?.values).map { $0.sorted { ($0.start, $0.key.joined(separator: "\u{0}")) < ($1.start, $1.key.joined(separator: "\u{0}")) } } ?? []
    }
    mutating func takeEnded(trigger: UUID, by time: Instant) -> [Bucket] { buckets(trigger: trigger).filter { $0.end <= time } }
    func earliestEnd(trigger: UUID, after time: Instant) -> Instant? { buckets(trigger: trigger).map(\.end).filter { $0 > time }.min() }
    func buckets(trigger: UUID, countedAtLeast count: Int) -> [Bucket] { buckets(trigger: trigger).filter { $0.count >= count } }
}

@Suite struct ProactiveIndexTests {
    /// Random streams over many keys through proactive triggers of every shape: the indexed store fires exactly what
    /// scanning every bucket on every pass fires, at the same times, in the same order.
    @Test(arguments: [1, 2, 3, 4, 5, 6])
    func theIndexedStoreFiresWhatScanningEveryBucketFires(seed: UInt64) throws {
        let automations = try TestEvents.automations(
            [
                proactive("silent host", #"expect: ["hb"], for_each: ["prefect.resource.id"], within: 30"#),
                proactive("slow run", #"after: ["run.started"], expect: ["run.done"], for_each: ["prefect.resource.id"], within: 20"#),
                proactive("few pings", #"expect: ["hb", "ping"], for_each: ["prefect.resource.id"], threshold: 3, within: 25"#),
                proactive("quiet", #"expect: ["ping"], within: 15"#),
                proactive("heartbeat", #"after: ["hb"], expect: ["hb", "run.done"], for_each: ["prefect.resource.id"], within: 12"#),
            ].joined(separator: "\n"))
        var random = SeededRandom(seed: seed)
        var events: [Event] = []
        var time = 0.0
        for number in 1...600 {
            time += Double(Int.random(in: 0...3, using: &random))
            let name = ["hb", "run.started", "run.done", "ping", "other"][Int.random(in: 0..<5, using: &random)]
            events.append(TestEvents.labelled(number, name, at: time, ["prefect.resource.id": "host-\(Int.random(in: 0..<40, using: &random))"]))
        }
        func run<Store: BucketStore>(_ store: Store) -> [Firing] {
            var engine = Engine(automations: automations, store: store)
            var firings = engine.advance(to: TestEvents.at(0))
            for event in events {
                firings += engine.advance(to: event.occurred)
                firings += engine.process(event)
            }
            firings += engine.advance(to: TestEvents.at(time + 100))
            return firings
        }
        let indexed = run(InMemoryBucketStore())
        let scanned = run(ScanningBucketStore())
        #expect(indexed.count > 50, "the stream makes the triggers fire")
        #expect(indexed.map(TestEvents.fired) == scanned.map(TestEvents.fired))
        #expect(indexed == scanned)
    }
}
