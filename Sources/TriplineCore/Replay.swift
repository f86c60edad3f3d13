/// Replays events through the engine on event time (SEMANTICS.md §9): the clock starts at the first event's
/// `occurred` (or an explicit start), proactive evaluations run exactly when the scheduler would run them before
/// each newer event, and finally up to `until`.
public struct Replay<Store: BucketStore>: Sendable {
    /// The engine being driven.
    public var engine: Engine<Store>
    private let start: Instant?
    private var started = false

    /// Creates a replay.
    /// - Parameters:
    ///   - engine: A fresh engine.
    ///   - start: The service start; defaults to the first event's `occurred`.
    public init(engine: Engine<Store>, start: Instant? = nil) {
        self.engine = engine
        self.start = start
    }

    /// Feeds the next event in arrival order.
    /// - Returns: The firings up to and including this event's evaluation, in order.
    public mutating func feed(_ event: Event) -> [Firing] {
        var firings: [Firing] = []
        if !started {
            started = true
            firings += engine.advance(to: start ?? event.occurred)
        }
        // Proactive evaluations due at or before this event's time run first; an older event does not move the clock back.
        firings += engine.advance(to: event.occurred)
        firings += engine.process(event)
        return firings
    }

    /// Runs the clock up to `until` (inclusive).
    /// - Returns: The remaining firings, in order.
    public mutating func finish(until: Instant) -> [Firing] {
        var firings: [Firing] = []
        if !started, let start {
            started = true
            firings += engine.advance(to: start)
        }
        // Without events and without a start time the clock never started, so there is nothing to run.
        if started { firings += engine.advance(to: until) }
        return firings
    }
}

extension Replay where Store == InMemoryBucketStore {
    /// Replays `events` over `automations` with an in-memory store.
    public static func run(automations: [Automation], events: [Event], until: Instant, start: Instant? = nil) -> [Firing] {
        var replay = Replay(engine: Engine(automations: automations, store: InMemoryBucketStore()), start: start)
        var firings: [Firing] = []
        for event in events { firings += replay.feed(event) }
        firings += replay.finish(until: until)
        return firings
    }
}
