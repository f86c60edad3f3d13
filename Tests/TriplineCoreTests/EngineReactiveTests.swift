import Testing
import TriplineCore
import TriplineTestKit

typealias Fired = TestEvents.Fired

func reactive(_ name: String, _ fields: String) -> String {
    """
    - name: \(name)
      trigger: {type: event, posture: Reactive, \(fields)}
      actions: [{type: do-nothing}]
    """
}

@Suite struct EngineReactiveTests {
    func e(
        _ number: Int, _ name: String, at seconds: Double, _ labels: [String: String], related: [[String: String]] = [],
        payload: [String: JSONValue] = [:], follows: Int? = nil
    ) -> Event {
        TestEvents.labelled(number, name, at: seconds, labels, related: related, payload: payload, follows: follows)
    }

    @Test func immediateFiresForEveryMatchingEventInAnyOrder() throws {
        let automations = try TestEvents.automations(reactive("any-fail", #"expect: ["job.failed"]"#))
        let fired = TestEvents.replay(
            automations, [e(1, "job.failed", at: 10, [:]), e(2, "job.ok", at: 11, [:]), e(3, "job.failed", at: 5, [:])], until: 60)
        #expect(fired == [Fired("any-fail", event: 1, at: 10), Fired("any-fail", event: 3, at: 5)])
    }

    @Test func thresholdWithinIsTumblingAnchoredAtTheFirstEvent() throws {
        let automations = try TestEvents.automations(reactive("three", #"expect: ["x"], threshold: 3, within: 10"#))
        // Window [t0-15min, 0+10): events at 0,1,2 fire at 2; 3 and 4 fall in the cool-down; next window [10, 20).
        let events = [0, 1, 2, 3, 4, 11, 12, 13].enumerated().map { e($0.offset + 1, "x", at: Double($0.element), [:]) }
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("three", event: 3, at: 2), Fired("three", event: 8, at: 13)])
    }

    @Test func anExpiredWindowsCountIsDiscarded() throws {
        let automations = try TestEvents.automations(reactive("two", #"expect: ["x"], threshold: 2, within: 10"#))
        let events = [e(1, "x", at: 0, [:]), e(2, "x", at: 15, [:]), e(3, "x", at: 26, [:]), e(4, "x", at: 27, [:])]
        // 0 → window ends 10; 15 opens [15,25) with count 1; 26 opens [25,35) with 1; 27 makes 2.
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("two", event: 4, at: 27)])
    }

    @Test func thresholdZeroFiresOnTheFirstEventThenCoolsDown() throws {
        let automations = try TestEvents.automations(reactive("zero", #"expect: ["x"], threshold: 0, within: 10"#))
        let events = [e(1, "x", at: 0, [:]), e(2, "x", at: 5, [:]), e(3, "x", at: 12, [:])]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("zero", event: 1, at: 0), Fired("zero", event: 3, at: 12)])
    }

    @Test func lateEventsOnlyCountInsideTheFirstWindowsLookback() throws {
        let automations = try TestEvents.automations(reactive("two", #"expect: ["x"], threshold: 2, within: 60"#))
        // The first window is [occurred - 15 min, occurred + 60): an event 10 minutes older still counts.
        let inLookback = TestEvents.replay(automations, [e(1, "x", at: 1000, [:]), e(2, "x", at: 400, [:])], until: 2000)
        #expect(inLookback == [Fired("two", event: 2, at: 400)])
        // 20 minutes older is before the window and ignored.
        let tooLate = TestEvents.replay(automations, [e(1, "x", at: 1500, [:]), e(2, "x", at: 300, [:])], until: 2000)
        #expect(tooLate.isEmpty)
    }

    @Test func forEachKeepsABucketPerKeyAndMissingLabelsShareOne() throws {
        let automations = try TestEvents.automations(reactive("per-run", #"expect: ["x"], for_each: ["run"], threshold: 2, within: 60"#))
        let events: [Event] = [
            e(1, "x", at: 0, ["run": "a"]), e(2, "x", at: 1, ["run": "b"]), e(3, "x", at: 2, ["run": "a"]),
            e(4, "x", at: 3, [:]), e(5, "x", at: 4, ["other": "1"]),
        ]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("per-run", event: 3, at: 2), Fired("per-run", event: 5, at: 4)])
    }

    @Test func forEachOnARelatedLabel() throws {
        let automations = try TestEvents.automations(
            reactive("per-deployment", #"expect: ["flow.failed"], for_each: ["related:deployment:prefect.resource.id"], threshold: 2, within: 600"#))
        func failed(_ number: Int, _ at: Double, _ deployment: String) -> Event {
            e(number, "flow.failed", at: at, [:], related: [["prefect.resource.id": deployment, "prefect.resource.role": "deployment"]])
        }
        let events = [failed(1, 0, "d1"), failed(2, 10, "d2"), failed(3, 20, "d2")]
        #expect(TestEvents.replay(automations, events, until: 700) == [Fired("per-deployment", event: 3, at: 20)])
    }

    @Test func matchRelatedListNeedsEverySpecAndOneResourcePerSpec() throws {
        let automations = try TestEvents.automations(
            reactive(
                "both",
                #"expect: ["x"], match_related: [{"prefect.resource.role": "flow", "name": "etl"}, {"prefect.resource.role": "tag", "prefect.resource.id": "tag.prod"}]"#
            ))
        let flow = ["prefect.resource.id": "flow.1", "prefect.resource.role": "flow", "name": "etl"]
        let tag = ["prefect.resource.id": "tag.prod", "prefect.resource.role": "tag"]
        let splitAcross = ["prefect.resource.id": "flow.2", "prefect.resource.role": "flow", "name": "other"]
        let events = [
            e(1, "x", at: 0, [:], related: [flow]), e(2, "x", at: 1, [:], related: [flow, tag]), e(3, "x", at: 2, [:], related: [splitAcross, tag]),
        ]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("both", event: 2, at: 1)])
    }

    @Test func matchNeverLooksAtRelatedResources() throws {
        let automations = try TestEvents.automations(reactive("m", #"expect: ["x"], match: {"prefect.resource.id": "flow.1"}"#))
        let events = [e(1, "x", at: 0, ["prefect.resource.id": "run.1"], related: [["prefect.resource.id": "flow.1", "prefect.resource.role": "flow"]])]
        #expect(TestEvents.replay(automations, events, until: 60).isEmpty)
    }

    @Test func afterOpensAWindowAndFiringClosesIt() throws {
        let automations = try TestEvents.automations(reactive("after", #"after: ["run.started"], expect: ["run.failed"], within: 60"#))
        let events = [
            e(1, "run.failed", at: 0, [:]),  // no window yet: ignored
            e(2, "run.started", at: 10, [:]), e(3, "run.failed", at: 20, [:]),  // fires
            e(4, "run.failed", at: 30, [:]),  // window was deleted on firing: ignored
            e(5, "run.started", at: 100, [:]), e(6, "run.failed", at: 170, [:]),  // outside [100,160): ignored
        ]
        #expect(TestEvents.replay(automations, events, until: 300) == [Fired("after", event: 3, at: 20)])
    }

    @Test func theSameEventInAfterAndExpectFiresOnTheSecondOccurrence() throws {
        let automations = try TestEvents.automations(reactive("twice", #"after: ["ping"], expect: ["ping"], within: 5"#))
        let events = [e(1, "ping", at: 0, [:]), e(2, "ping", at: 3, [:]), e(3, "ping", at: 10, [:])]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("twice", event: 2, at: 3)])
        let immediate = try TestEvents.automations(reactive("never", #"after: ["ping"], expect: ["ping"], within: 0"#))
        #expect(TestEvents.replay(immediate, events, until: 60).isEmpty)
    }

    @Test func withEmptyExpectAndThresholdZeroTheAfterEventItselfFires() throws {
        let automations = try TestEvents.automations(reactive("self", #"after: ["open"], threshold: 0, within: 30"#))
        #expect(TestEvents.replay(automations, [e(1, "open", at: 0, [:])], until: 60) == [Fired("self", event: 1, at: 0)])
    }

    @Test func duplicateIdsAreCountedOnce() throws {
        let automations = try TestEvents.automations(reactive("two", #"expect: ["x"], threshold: 2, within: 60"#))
        let events = [e(1, "x", at: 0, [:]), e(1, "x", at: 1, [:]), e(2, "x", at: 2, [:])]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("two", event: 2, at: 2)])
    }

    @Test func logWriteEventsNeverReachAutomations() throws {
        let automations = try TestEvents.automations(reactive("all", "expect: []"))
        #expect(TestEvents.replay(automations, [e(1, "prefect.log.write", at: 0, [:]), e(2, "y", at: 1, [:])], until: 60) == [
            Fired("all", event: 2, at: 1)
        ])
    }

    @Test func disabledAutomationsNeverFire() throws {
        let automations = try TestEvents.automations(
            """
            - name: off
              enabled: false
              trigger: {type: event, posture: Reactive, expect: ["x"]}
              actions: []
            """)
        #expect(TestEvents.replay(automations, [e(1, "x", at: 0, [:])], until: 60).isEmpty)
    }

    @Test func negatedEventNamesWork() throws {
        // Tripline's D1.
        let automations = try TestEvents.automations(reactive("not-heartbeat", #"expect: ["!heartbeat"]"#))
        let events = [e(1, "heartbeat", at: 0, [:]), e(2, "job.failed", at: 1, [:])]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("not-heartbeat", event: 2, at: 1)])
    }

    @Test func payloadPredicatesFilterLikeMatch() throws {
        let automations = try TestEvents.automations(
            reactive("main", #"expect: ["github.push"], match_payload: {"ref": "refs/heads/main", "repository.full_name": "acme/*"}"#))
        func push(_ number: Int, _ ref: String, _ repository: String) -> Event {
            let payload: [String: JSONValue] = ["ref": .string(ref), "repository": .object(["full_name": .string(repository)])]
            return e(number, "github.push", at: Double(number), [:], payload: payload)
        }
        let events = [push(1, "refs/heads/dev", "acme/api"), push(2, "refs/heads/main", "other/api"), push(3, "refs/heads/main", "acme/api")]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("main", event: 3, at: 3)])
    }

    @Test func followersWaitForTheirLeader() throws {
        let automations = try TestEvents.automations(reactive("seq", #"expect: ["b"], after: ["a"], within: 60"#))
        // b arrives first but follows a; it is evaluated right after a, so a's window is open.
        let events = [e(2, "b", at: 5, [:], follows: 1), e(1, "a", at: 1, [:])]
        #expect(TestEvents.replay(automations, events, until: 120) == [Fired("seq", event: 2, at: 5)])
    }

    @Test func aFollowerWhoseLeaderNeverArrivesIsReleasedAfterTheLookback() throws {
        let automations = try TestEvents.automations(reactive("any-b", #"expect: ["b"]"#))
        let events = [e(2, "b", at: 0, [:], follows: 99), e(3, "c", at: 10, [:])]
        #expect(TestEvents.replay(automations, events, until: 10).isEmpty, "still parked")
        #expect(TestEvents.replay(automations, events, until: 901) == [Fired("any-b", event: 2, at: 0)])
    }

    @Test func aDuplicateOfAnEventIsDroppedEvenWhenItsFollowerIsParked() throws {
        let automations = try TestEvents.automations(reactive("count", #"expect: ["a", "b"], threshold: 3, within: 60"#))
        let events = [e(2, "b", at: 2, [:], follows: 1), e(1, "a", at: 1, [:]), e(1, "a", at: 1, [:]), e(3, "a", at: 3, [:])]
        #expect(TestEvents.replay(automations, events, until: 60) == [Fired("count", event: 3, at: 3)])
    }
}

extension TestEvents {
    /// `event(number, name, at:, resource-labels)` with positional labels, for brevity in these tests.
    static func labelled(
        _ number: Int, _ name: String, at seconds: Double, _ labels: [String: String], related: [[String: String]] = [],
        payload: [String: JSONValue] = [:], follows: Int? = nil
    ) -> Event {
        var resource = labels
        resource["prefect.resource.id"] = resource["prefect.resource.id"] ?? "test.resource"
        return event(number, name, at: seconds, resource: resource, related: related, payload: payload, follows: follows)
    }
}

@Suite struct RememberedEventTests {
    /// Ids are forgotten once their event occurred before the horizon, in any arrival order: a recent event does not
    /// hold back the forgetting of the old ones that arrive after it.
    @Test func oldIdsAreForgottenBehindARecentOne() throws {
        var configuration = EngineConfiguration()
        configuration.deduplicationHorizon = .minutes(15)
        var engine = Engine(automations: [], store: InMemoryBucketStore(), configuration: configuration)
        _ = engine.advance(to: TestEvents.at(100_000))
        let recent = TestEvents.event(1, "recent", at: 99_990)
        _ = engine.process(recent)
        for number in 2...5_000 { _ = engine.process(TestEvents.event(number, "old", at: 0)) }
        #expect(engine.rememberedEventCount == 1, "only the recent id is remembered, not the 4,999 old ones behind it")
        #expect(engine.process(recent).isEmpty)
        let automations = try TestEvents.automations(
            """
            - name: after recent
              trigger: {type: event, posture: Reactive, expect: ["follower"]}
              actions: [{type: do-nothing}]
            """)
        var withAutomation = Engine(automations: automations, store: InMemoryBucketStore(), configuration: configuration)
        _ = withAutomation.advance(to: TestEvents.at(100_000))
        _ = withAutomation.process(recent)
        for number in 2...2_000 { _ = withAutomation.process(TestEvents.event(number, "old", at: 0)) }
        let follower = TestEvents.event(9_999, "follower", at: 99_995, follows: 1)
        #expect(withAutomation.process(follower, now: TestEvents.at(100_000)).count == 1, "its leader is still remembered: no parking")
        #expect(withAutomation.rememberedEventCount == 2)
    }
}
