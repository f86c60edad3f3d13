public import Foundation

/// Settings of the trigger engine.
public struct EngineConfiguration: Sendable, Hashable {
    /// How far before an event's `occurred` the first window of a trigger without `after` starts, so that
    /// out-of-order older events still count (Prefect's `PRECEDING_EVENT_LOOKBACK`, 15 minutes).
    public var precedingEventLookback: TimeSpan = .minutes(15)
    /// How long processed event ids are remembered for deduplication, measured on the engine's clock. `nil`
    /// remembers every id (replay). The server deduplicates in its event log and may bound this.
    public var deduplicationHorizon: TimeSpan? = nil
    /// The deepest chain of `follows` evaluated at once (Prefect's `MAX_DEPTH_OF_PRECEDING_EVENT`).
    public var maximumFollowerDepth: Int = 20
    /// Evaluate a proactive trigger as soon as one of its windows ends, not only when Prefect's scheduler would
    /// (`min(as_of + within, nearest bucket end)` at its last run). The server sets this so that a proactive firing
    /// is never late; replay leaves it off to reproduce Prefect's timing exactly.
    public var evaluateAtEveryWindowEnd: Bool = false
    /// Evaluate a proactive trigger whose run is overdue at the time the engine is advanced to, not at the overdue
    /// time, as Prefect's server does (its scheduler runs at wall-clock time). Without it (replay), an engine
    /// advanced across a long gap evaluates every missed run in turn, which is exact on event time but, for windows
    /// opened by old events, walks through every window since then. The server sets this.
    public var evaluateOverdueRunsAtAdvanceTime: Bool = false

    /// The defaults, matching Prefect.
    public init() {}
}

/// Something the engine did or decided, reported to ``Engine/trace`` for `tripline explain` and debugging.
public struct EngineNote: Sendable, Hashable {
    /// The event being evaluated, if any.
    public var eventID: EventID?
    /// The automation concerned, if any.
    public var automation: String?
    /// What happened.
    public var message: String

    /// Creates a note.
    public init(eventID: EventID?, automation: String?, message: String) {
        self.eventID = eventID
        self.automation = automation
        self.message = message
    }
}

/// The trigger engine: a deterministic state machine over automations and bucket state. Feed it events with
/// ``process(_:now:)`` and the passage of time with ``advance(to:)``; each returns the firings that resulted.
///
/// It implements Prefect's automations semantics (SEMANTICS.md) with Tripline's differences D1–D4. It does no IO;
/// the same code runs in `tripline replay` (event time) and in the server (wall clock for proactive deadlines).
public struct Engine<Store: BucketStore>: Sendable {
    // MARK: - Compiled automations

    enum Parent: Sendable, Hashable {
        case automation
        case composite(Int)
    }

    /// A class so that looking one up on the hot path does not copy (and retain) every field.
    final class CompiledEventTrigger: Sendable {
        let trigger: EventTrigger
        let automation: Int
        let parent: Parent
        let nameFilter: EventNameFilter
        let expect: [LabelPattern]
        let after: [LabelPattern]
        /// Prefect 3.9's held `expect` events: proactive triggers with `after`.
        let holdsExpectEvents: Bool
        /// D2/D3: proactive without `after` tiles its windows back to back.
        let tiles: Bool
        let relatedSpecs: [ResourceSpecification]
        /// The trigger's index among the engine's event triggers, for proactive scheduling.
        var position: Int? { positionStorage }
        nonisolated(unsafe) var positionStorage: Int?

        init(
            trigger: EventTrigger, automation: Int, parent: Parent, nameFilter: EventNameFilter, expect: [LabelPattern], after: [LabelPattern],
            holdsExpectEvents: Bool, tiles: Bool, relatedSpecs: [ResourceSpecification]
        ) {
            self.trigger = trigger
            self.automation = automation
            self.parent = parent
            self.nameFilter = nameFilter
            self.expect = expect
            self.after = after
            self.holdsExpectEvents = holdsExpectEvents
            self.tiles = tiles
            self.relatedSpecs = relatedSpecs
        }

        @inline(__always) func expects(_ name: String) -> Bool {
            if expect.isEmpty { return true }
            for pattern in expect where pattern.matches(name) { return true }
            return false
        }

        @inline(__always) func startsAfter(_ name: String) -> Bool {
            for pattern in after where pattern.matches(name) { return true }
            return false
        }

        /// `covers_resources` plus `match_payload`.
        @inline(__always) func coversResourcesAndPayload(_ event: Event) -> Bool {
            if !trigger.match.isEmpty, !trigger.match.matches(event.resource) { return false }
            for spec in relatedSpecs where !spec.includes(event.related) { return false }
            if let predicate = trigger.matchPayload, !predicate.matches(event.payload) { return false }
            return true
        }

        func bucketingKey(_ event: Event) -> BucketingKey {
            trigger.forEach.map { event.resourceLabel($0) ?? "" }
        }
    }

    struct CompositeNode: Sendable {
        let id: UUID
        let automation: Int
        let parent: Parent
        let isSequence: Bool
        let expectedFirings: Int
        let children: [UUID]
        let within: TimeSpan?
    }

    struct ChildSlot: Sendable {
        var child: UUID
        var triggered: Instant
        var triggeringEvent: Event?
    }

    struct HeldKey: Hashable, Sendable {
        var trigger: UUID
        var key: BucketingKey
    }

    struct HeldEvent: Sendable {
        var id: EventID
        var occurred: Instant
    }

    /// A firing of a trigger on its way up to its automation.
    struct TriggerFiring: Sendable {
        var trigger: UUID
        var triggered: Instant
        var triggeringEvent: Event?
        var labels: [String: String]
    }

    /// The automations, enabled ones only, in the order given.
    public let automations: [Automation]
    let eventTriggers: [CompiledEventTrigger]
    let composites: [CompositeNode]
    let proactiveTriggers: [Int]
    let index: TriggerIndex

    // MARK: - State

    /// The buckets.
    public internal(set) var store: Store
    var held: [HeldKey: [HeldEvent]] = [:]
    var slots: [UUID: [ChildSlot]] = [:]
    var seen: Set<EventID> = []
    /// The remembered ids by `occurred`, earliest first, for forgetting them past the horizon in any arrival order.
    var seenOrder = DeadlineHeap<SeenID>()
    var parked: [EventID: [EventID: Event]] = [:]
    var waitlist: [EventID: (received: Instant, leader: EventID)] = [:]
    var nextProactiveRun: [Int: Instant] = [:]
    var proactiveQueue = DeadlineHeap<Int>()
    var proactiveScheduled = false
    /// Parked events by release time (received + lookback), in insertion order; stale entries are skipped.
    var releaseQueue: [(time: Instant, event: EventID)] = []
    /// The latest time the engine has been advanced to or has seen an event at.
    public internal(set) var clock: Instant?
    /// The engine's settings.
    public let configuration: EngineConfiguration

    /// Receives a note for each decision the engine makes; `nil` (the default) costs nothing.
    public var trace: (@Sendable (EngineNote) -> Void)?

    var candidateBuffer: [Int32] = []
    var candidateStamp: [UInt32]
    var stamp: UInt32 = 0
    var pendingFirings: [Firing] = []
    /// Incremented whenever held events, composite slots or parked events change, so that a persistent owner knows
    /// when ``auxiliaryState`` needs saving.
    public internal(set) var auxiliaryStateVersion = 0
    /// How many (event, interested trigger) evaluations and proactive evaluations the engine has run, for metrics.
    public internal(set) var triggerEvaluations = 0

    /// Compiles the automations. Disabled automations are left out, as Prefect does.
    public init(automations: [Automation], store: Store, configuration: EngineConfiguration = EngineConfiguration()) {
        let enabled = automations.filter(\.enabled)
        self.automations = enabled
        self.store = store
        self.configuration = configuration
        var eventTriggers: [CompiledEventTrigger] = []
        var composites: [CompositeNode] = []
        func compile(_ trigger: Trigger, automation: Int, parent: Parent) {
            switch trigger {
            case .event(let event):
                let proactive = event.posture == .proactive
                eventTriggers.append(
                    CompiledEventTrigger(
                        trigger: event, automation: automation, parent: parent,
                        nameFilter: EventNameFilter(expect: event.expect, after: event.after),
                        expect: event.expect.map(LabelPattern.init), after: event.after.map(LabelPattern.init),
                        holdsExpectEvents: proactive && !event.after.isEmpty, tiles: proactive && event.after.isEmpty,
                        relatedSpecs: event.matchRelated.filter { !$0.isEmpty }))
            case .compound(let compound):
                let nodeIndex = composites.count
                composites.append(
                    CompositeNode(
                        id: compound.id, automation: automation, parent: parent, isSequence: false, expectedFirings: compound.expectedFirings,
                        children: compound.triggers.map(\.id), within: compound.within))
                for child in compound.triggers { compile(child, automation: automation, parent: .composite(nodeIndex)) }
            case .sequence(let sequence):
                let nodeIndex = composites.count
                composites.append(
                    CompositeNode(
                        id: sequence.id, automation: automation, parent: parent, isSequence: true, expectedFirings: sequence.triggers.count,
                        children: sequence.triggers.map(\.id), within: sequence.within))
                for child in sequence.triggers { compile(child, automation: automation, parent: .composite(nodeIndex)) }
            }
        }
        for (index, automation) in enabled.enumerated() { compile(automation.trigger, automation: index, parent: .automation) }
        var index = TriggerIndex()
        for (position, compiled) in eventTriggers.enumerated() {
            compiled.positionStorage = position
            let trigger = compiled.trigger
            let pin: TriggerIndex.Pin
            if let id = trigger.match.literalValue(of: Resource.idLabel) {
                pin = .label(Resource.idLabel, id)
            } else if let entry = trigger.match.entries.first(where: { trigger.match.literalValue(of: $0.label) != nil }) {
                pin = .label(entry.label, trigger.match.literalValue(of: entry.label)!)
            } else if let id = compiled.relatedSpecs.lazy.compactMap({ $0.literalValue(of: Resource.idLabel) }).first {
                pin = .related(id)
            } else {
                pin = .none
            }
            index.insert(trigger: Int32(position), keys: compiled.nameFilter.indexKeys, pin: pin)
        }
        self.eventTriggers = eventTriggers
        self.composites = composites
        self.index = index
        self.proactiveTriggers = eventTriggers.indices.filter { eventTriggers[$0].trigger.posture == .proactive }
        self.candidateStamp = [UInt32](repeating: 0, count: eventTriggers.count)
    }

    /// How many processed event ids the engine remembers (for `follows` and duplicates; bounded by
    /// ``EngineConfiguration/deduplicationHorizon``).
    public var rememberedEventCount: Int { seen.count }

    /// The number of event triggers (including children of compound and sequence triggers).
    public var eventTriggerCount: Int { eventTriggers.count }

    /// The earliest time at which ``advance(to:)`` has work to do: a proactive evaluation or the release of an event
    /// that waited too long for its leader. `nil` when nothing is scheduled.
    public var nextDeadline: Instant? {
        var earliest: Instant?
        if !proactiveScheduled, !proactiveTriggers.isEmpty { return clock }
        for entry in proactiveQueue.entries where nextProactiveRun[entry.id] == entry.time {
            if earliest.map({ entry.time < $0 }) ?? true { earliest = entry.time }
        }
        for entry in waitlist.values {
            let release = entry.received + configuration.precedingEventLookback
            if earliest.map({ release < $0 }) ?? true { earliest = release }
        }
        return earliest
    }

    func note(_ event: Event?, _ automation: Int?, _ message: @autoclosure () -> String) {
        guard let trace else { return }
        trace(EngineNote(eventID: event?.id, automation: automation.map { automations[$0].name }, message: message()))
    }

    // MARK: - Firing

    mutating func fire(_ firing: TriggerFiring, parent: Parent, automation: Int, now: Instant) {
        switch parent {
        case .automation:
            let automationValue = automations[automation]
            note(firing.triggeringEvent, automation, "fired at \(now)")
            pendingFirings.append(
                Firing(
                    automationID: automationValue.id, automationName: automationValue.name, triggerID: automationValue.trigger.id,
                    triggeringEvent: firing.triggeringEvent, at: firing.triggered, bucketingLabels: firing.labels))
        case .composite(let nodeIndex):
            evaluateComposite(nodeIndex, childFiring: firing, now: now)
        }
    }

    mutating func evaluateComposite(_ nodeIndex: Int, childFiring: TriggerFiring, now: Instant) {
        let node = composites[nodeIndex]
        if node.expectedFirings == 1 {
            fire(
                TriggerFiring(trigger: node.id, triggered: now, triggeringEvent: childFiring.triggeringEvent, labels: [:]),
                parent: node.parent, automation: node.automation, now: now)
            return
        }
        var current = slots[node.id] ?? []
        if let within = node.within {
            let horizon = childFiring.triggered - within
            current.removeAll { $0.triggered < horizon }
        }
        if let existing = current.firstIndex(where: { $0.child == childFiring.trigger }) {
            current[existing].triggered = childFiring.triggered
            current[existing].triggeringEvent = childFiring.triggeringEvent
        } else {
            current.append(ChildSlot(child: childFiring.trigger, triggered: childFiring.triggered, triggeringEvent: childFiring.triggeringEvent))
        }
        let ready: Bool
        if node.isSequence {
            // Stable sort: slots with equal times keep the order in which they were first filled.
            let order = current.enumerated().sorted { ($0.element.triggered, $0.offset) < ($1.element.triggered, $1.offset) }.map(\.element.child)
            ready = order == node.children
        } else {
            ready = current.count >= node.expectedFirings
        }
        note(
            childFiring.triggeringEvent, node.automation,
            "\(node.isSequence ? "sequence" : "compound") trigger has \(current.count) of \(node.expectedFirings) child firings\(ready ? ": ready" : "")")
        if ready {
            slots[node.id] = nil
            auxiliaryStateVersion &+= 1
            fire(
                TriggerFiring(trigger: node.id, triggered: now, triggeringEvent: childFiring.triggeringEvent, labels: [:]),
                parent: node.parent, automation: node.automation, now: now)
        } else {
            slots[node.id] = current
            auxiliaryStateVersion &+= 1
        }
    }

    mutating func takeFirings() -> [Firing] {
        defer { pendingFirings.removeAll(keepingCapacity: true) }
        return pendingFirings
    }
}
