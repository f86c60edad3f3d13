public import Foundation

/// Whether a trigger reacts to the presence of events or to their absence.
public enum Posture: String, Sendable, Hashable {
    /// Fires when at least `threshold` expected events arrive within the window.
    case reactive = "Reactive"
    /// Fires when fewer than `threshold` expected events arrived by the end of the window.
    case proactive = "Proactive"
}

/// A trigger on events: Prefect's `EventTrigger`, plus Tripline's `match_payload`.
public struct EventTrigger: Sendable, Hashable {
    /// The trigger's id.
    public var id: UUID
    /// Which primary resources count.
    public var match: ResourceSpecification
    /// Each specification must be satisfied by some related resource.
    public var matchRelated: [ResourceSpecification]
    /// Whether `match_related` was written as a list.
    public var matchRelatedIsList: Bool
    /// Event-name patterns that open a window.
    public var after: [String]
    /// Event-name patterns that are counted; empty means every event.
    public var expect: [String]
    /// Labels whose values split the trigger into independent buckets (sorted, unique).
    public var forEach: [String]
    /// Reactive or proactive.
    public var posture: Posture
    /// How many expected events are needed (reactive) or expected (proactive).
    public var threshold: Int
    /// The window length; zero means "immediate" for reactive triggers.
    public var within: TimeSpan
    /// Tripline's payload conditions; `nil` when absent.
    public var matchPayload: PayloadPredicate?

    /// Creates an event trigger with Prefect's defaults.
    public init(
        id: UUID = UUID(),
        match: ResourceSpecification = ResourceSpecification(),
        matchRelated: [ResourceSpecification] = [],
        matchRelatedIsList: Bool = false,
        after: [String] = [],
        expect: [String] = [],
        forEach: [String] = [],
        posture: Posture = .reactive,
        threshold: Int = 1,
        within: TimeSpan = .zero,
        matchPayload: PayloadPredicate? = nil
    ) {
        self.id = id
        self.match = match
        self.matchRelated = matchRelated
        self.matchRelatedIsList = matchRelatedIsList
        self.after = Array(Set(after)).sorted()
        self.expect = Array(Set(expect)).sorted()
        self.forEach = Array(Set(forEach)).sorted()
        self.posture = posture
        self.threshold = threshold
        self.within = posture == .proactive && within == .zero ? .seconds(10) : within
        self.matchPayload = matchPayload
    }

    /// A reactive trigger with no window fires for every matching event.
    public var immediate: Bool { posture == .reactive && within == .zero }
}

/// How many children of a compound trigger must fire.
public enum CompoundRequirement: Sendable, Hashable {
    /// One child.
    case any
    /// Every child.
    case all
    /// At least this many children.
    case count(Int)
}

/// A trigger that fires when enough of its children fire within a time span.
public struct CompoundTrigger: Sendable, Hashable {
    /// The trigger's id.
    public var id: UUID
    /// The children.
    public var triggers: [Trigger]
    /// How many children must fire.
    public var require: CompoundRequirement
    /// The span within which the child firings must fall; `nil` for no limit.
    public var within: TimeSpan?

    /// Creates a compound trigger.
    public init(id: UUID = UUID(), triggers: [Trigger], require: CompoundRequirement, within: TimeSpan?) {
        self.id = id
        self.triggers = triggers
        self.require = require
        self.within = within
    }

    /// How many child firings are needed.
    public var expectedFirings: Int {
        switch require {
        case .any: 1
        case .all: triggers.count
        case .count(let count): count
        }
    }
}

/// A trigger that fires when all of its children fire in the declared order.
public struct SequenceTrigger: Sendable, Hashable {
    /// The trigger's id.
    public var id: UUID
    /// The children, in the order they must fire.
    public var triggers: [Trigger]
    /// The span within which the child firings must fall; `nil` for no limit.
    public var within: TimeSpan?

    /// Creates a sequence trigger.
    public init(id: UUID = UUID(), triggers: [Trigger], within: TimeSpan?) {
        self.id = id
        self.triggers = triggers
        self.within = within
    }
}

/// Any trigger.
public indirect enum Trigger: Sendable, Hashable {
    case event(EventTrigger)
    case compound(CompoundTrigger)
    case sequence(SequenceTrigger)

    /// The trigger's id.
    public var id: UUID {
        switch self {
        case .event(let trigger): trigger.id
        case .compound(let trigger): trigger.id
        case .sequence(let trigger): trigger.id
        }
    }

    /// The `type` discriminator.
    public var typeName: String {
        switch self {
        case .event: "event"
        case .compound: "compound"
        case .sequence: "sequence"
        }
    }

    /// The children of a composite trigger; empty for event triggers.
    public var children: [Trigger] {
        switch self {
        case .event: []
        case .compound(let trigger): trigger.triggers
        case .sequence(let trigger): trigger.triggers
        }
    }

    /// Every event trigger in this tree, depth first, in declared order.
    public var eventTriggers: [EventTrigger] {
        switch self {
        case .event(let trigger): [trigger]
        case .compound, .sequence: children.flatMap(\.eventTriggers)
        }
    }
}
