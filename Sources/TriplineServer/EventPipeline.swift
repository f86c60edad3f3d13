public import Foundation
public import Logging
internal import CoreMetrics
import Synchronization
public import TriplineCore

/// The heart of the server: stores events durably, evaluates them with the trigger engine, and records firings, in
/// one transaction per group of concurrent submissions (group commit), so that durability does not cost a
/// transaction per event and a firing commits together with the bucket change that caused it.
public actor EventPipeline {
    /// The result of one submission.
    public struct Outcome: Sendable {
        /// Events newly stored.
        public var stored = 0
        /// Events whose id was already stored.
        public var duplicates = 0
    }

    /// The engine, guarded by a mutex; it is only mutated inside the store's serialized write transactions, and the
    /// mutex makes reads from elsewhere (deadlines, counts) safe.
    final class EngineHost: Sendable {
        struct State {
            var engine: Engine<JournalingBucketStore>
            /// The auxiliary-state version last written, so that it is rewritten only when it changed.
            var savedAuxiliaryVersion = -1
        }
        let state: Mutex<State>
        init(_ engine: Engine<JournalingBucketStore>) { self.state = Mutex(State(engine: engine)) }
    }

    let store: any DurableStore
    let logger: Logger
    let metrics: ServerMetrics
    let maximumPending: Int
    let host: EngineHost
    private var engineConfiguration: EngineConfiguration
    let writer: CommitWriter
    private var automations: [Automation]
    private var feed: LiveFeed
    private var deadlineWaiters: [CheckedContinuation<Void, Never>] = []
    /// Counts the wake-ups of the proactive scheduler, so that one that happens between its reading the next deadline
    /// and its starting to wait is not lost.
    private var deadlineGeneration = 0
    /// The deadline the scheduler last read: a commit wakes it only for an earlier one.
    private var scheduledDeadline: Instant?
    /// The store shared with other processes, when there is one: ingest then only stores and queues events, and this
    /// process evaluates (and runs proactive deadlines) only while it leads. `nil`: evaluation happens in the ingest
    /// transaction (SQLite, one process).
    nonisolated let shared: (any SharedStore)?
    /// Whether this process leads the evaluation (always true without a shared store).
    private(set) var leading: Bool

    /// Signalled after every commit that recorded firings (and so new outbox entries), to wake the dispatcher.
    public nonisolated let outboxSignal: WakeSignal

    /// Creates a pipeline over `store` for `automations`; call ``start()`` before submitting.
    public init(
        store: any DurableStore, automations: [Automation], logger: Logger, metrics: ServerMetrics, maximumPending: Int = 200_000,
        outboxSignal: WakeSignal = WakeSignal()
    ) {
        self.outboxSignal = outboxSignal
        var configuration = EngineConfiguration()
        configuration.evaluateAtEveryWindowEnd = true
        configuration.evaluateOverdueRunsAtAdvanceTime = true
        // The event log deduplicates by id; the engine only needs to remember the ids a `follows` can still name (its
        // lookback). Memory: about 50 bytes per event that occurred within the horizon.
        configuration.deduplicationHorizon = configuration.precedingEventLookback
        self.engineConfiguration = configuration
        self.store = store
        self.logger = logger
        self.metrics = metrics
        self.feed = LiveFeed(dropped: metrics.liveFeedDropped, logger: logger)
        self.maximumPending = maximumPending
        self.automations = automations
        let host = EngineHost(Engine(automations: automations, store: JournalingBucketStore(), configuration: configuration))
        self.host = host
        let shared = store as? any SharedStore
        self.shared = shared
        self.leading = shared == nil
        self.writer = CommitWriter(
            store: store, host: host, metrics: metrics, logger: logger, maximumPending: maximumPending, outboxSignal: outboxSignal,
            evaluates: shared == nil)
    }

    /// Loads the engine state saved by earlier runs (buckets, held events, composite slots, parked events) and
    /// starts the writer thread. With a shared store the state is loaded when this process becomes the leader.
    public func start() async throws {
        if shared == nil { try await reloadEngineState() }
        writer.start(pipeline: self)
    }

    /// Stops the writer thread after it committed everything already submitted.
    public nonisolated func stopWriter() {
        writer.stop()
    }

    private func reloadEngineState() async throws {
        let automations = self.automations
        let configuration = engineConfiguration
        let host = self.host
        @Sendable func install(_ saved: (buckets: [Bucket], auxiliary: JSONValue?)) -> Int {
            let known = Set(automations.flatMap { $0.trigger.eventTriggers.map(\.id) })
            var engine = Engine(
                automations: automations, store: JournalingBucketStore(loading: saved.buckets.filter { known.contains($0.triggerID) }),
                configuration: configuration)
            if let auxiliary = saved.auxiliary { engine.restoreAuxiliaryState(auxiliary) }
            host.state.withLock { $0 = EngineHost.State(engine: engine) }
            return saved.buckets.count
        }
        let buckets: Int
        if let shared {
            // Read and installed inside a leader transaction: serialized with the evaluations, so that no evaluation
            // commits between the read and the swap.
            buckets = try await shared.writeAsLeader { transaction in install(try transaction.loadEngineState()) }
        } else {
            buckets = install(try await store.loadEngineState())
        }
        logger.info("engine state loaded", metadata: ["buckets": "\(buckets)", "automations": "\(automations.count)"])
    }

    /// Swaps in a new set of automations, keeping the state of triggers that still exist.
    public func replaceAutomations(_ automations: [Automation]) {
        self.automations = automations
        let configuration = engineConfiguration
        host.state.withLock { state in
            state.engine = Engine.replacing(state.engine, with: automations, configuration: configuration)
            state.savedAuxiliaryVersion = -1
        }
        wakeDeadlineWaiters()
    }

    // MARK: - Ingest

    /// Stores `events` durably and evaluates them; returns once they are committed.
    ///
    /// Submissions are queued to one writer thread that commits everything waiting in one transaction (group
    /// commit) and resumes the submitters itself, without passing through this actor: on the hot path a request
    /// costs one hand-off to the writer and one back.
    /// - Throws: ``TriplineError`` with code `.limitExceeded` when too many events are waiting (back-pressure), or
    ///   the store's error when the commit failed (nothing of the group was stored).
    public nonisolated func submit(_ events: [Event]) async throws -> Outcome {
        if events.isEmpty { return Outcome() }
        metrics.eventsReceived.increment(by: events.count)
        return try await writer.submit(events)
    }

    /// Stores and evaluates events the server itself produced (the action layer's), which are not counted as
    /// received from clients.
    /// - Parameter outboxResults: Finished outbox entries to record in the same transaction.
    public nonisolated func submitInternal(_ events: [Event], outboxResults: [OutboxResult] = []) async throws -> Outcome {
        if events.isEmpty, outboxResults.isEmpty { return Outcome() }
        return try await writer.submit(events, outboxResults: outboxResults)
    }

    /// Called by the writer after each commit, off the submitters' path.
    func committed(_ result: BatchResult) {
        if !result.firings.isEmpty {
            for firing in result.firings {
                logger.info(
                    "automation fired",
                    metadata: [
                        "automation": "\(firing.automationName)", "automation_id": "\(firing.automationID.lowercasedText)",
                        "triggering_event": "\(firing.triggeringEvent?.id.lowercasedText ?? "none")",
                    ])
            }
        }
        publish(result.stored)
        // The scheduler sleeps until the deadline it last read; only an earlier one needs it awake (under load that
        // spares it a wake-up per commit).
        switch result.nextDeadline {
        case .some(.some(let next)): if scheduledDeadline.map({ next < $0 }) ?? true { wakeDeadlineWaiters() }
        case .some(.none): break
        case .none: wakeDeadlineWaiters()
        }
    }

    /// Reloads the engine from the store after a failed commit (the in-memory engine may have moved on). With a
    /// shared store only a failed evaluation needs it (ingest does not touch the engine), and only on the leader.
    func recoverAfterFailedCommit() async {
        guard leading else { return }
        do {
            try await reloadEngineState()
        } catch {
            logger.error("reloading the engine state failed", metadata: ["error": "\(error)"])
        }
    }

    struct BatchResult: Sendable {
        /// Time spent in the trigger engine for the batch (evaluation, not storage).
        var evaluationNanoseconds: UInt64 = 0
        /// Interested triggers evaluated for the batch.
        var triggerEvaluations = 0
        var outcomes: [Outcome] = []
        var stored: [Event] = []
        var duplicates = 0
        var firings: [Firing] = []
        /// The engine's next deadline after the batch, when the batch knows it (`.some(nil)`: there is none); `nil`
        /// when unknown, which wakes the proactive scheduler to look.
        var nextDeadline: Instant?? = nil
    }

    /// How deep `prefect.automation.triggered` events are fed back into the engine, so that an automation that
    /// reacts to automation events cannot loop forever.
    static let maximumFeedbackDepth = 4

    /// Stores the groups' events, evaluates the new ones and everything they cause, inside one transaction.
    static func evaluate(
        groups: [(events: [Event], encoded: [String])], received: Instant, state: inout EngineHost.State, transaction: any StoreTransaction
    ) throws -> BatchResult {
        let (result, queue) = try store(groups: groups, received: received, transaction: transaction)
        return try evaluate(queue: queue, now: received, state: &state, transaction: transaction, result: result)
    }

    /// Stores the groups' events (each id once) and returns the new ones, to evaluate.
    static func store(
        groups: [(events: [Event], encoded: [String])], received: Instant, transaction: any StoreTransaction
    ) throws -> (BatchResult, [(Event, Int)]) {
        var result = BatchResult()
        var queue: [(Event, Int)] = []
        let events = groups.flatMap(\.events)
        let encoded = groups.flatMap { group in
            group.encoded.count == group.events.count ? group.encoded : group.events.map(\.storageText)
        }
        let new = try transaction.insertEvents(events, encoded: encoded, received: received)
        var position = 0
        for group in groups {
            var outcome = Outcome()
            for event in group.events {
                defer { position += 1 }
                if new[position] {
                    var stored = event
                    stored.received = received
                    result.stored.append(stored)
                    queue.append((stored, 0))
                    outcome.stored += 1
                } else {
                    outcome.duplicates += 1
                    result.duplicates += 1
                }
            }
            result.outcomes.append(outcome)
        }
        return (result, queue)
    }

    /// Evaluates stored events and everything they cause.
    static func evaluate(
        queue: [(Event, Int)], now received: Instant, state: inout EngineHost.State, transaction: any StoreTransaction, result: BatchResult
    ) throws -> BatchResult {
        var result = result
        var queue = queue
        var index = 0
        let evaluationsBefore = state.engine.triggerEvaluations
        while index < queue.count {
            let (event, depth) = queue[index]
            index += 1
            let started = DispatchTime.now().uptimeNanoseconds
            let firings = state.engine.process(event, now: received)
            result.evaluationNanoseconds += DispatchTime.now().uptimeNanoseconds - started
            try record(firings, depth: depth, received: received, engine: state.engine, transaction: transaction, result: &result, queue: &queue)
        }
        try saveEngineState(&state, transaction: transaction)
        result.triggerEvaluations = state.engine.triggerEvaluations - evaluationsBefore
        return result
    }

    static func record(
        _ firings: [Firing], depth: Int, received: Instant, engine: Engine<JournalingBucketStore>, transaction: any StoreTransaction,
        result: inout BatchResult, queue: inout [(Event, Int)]
    ) throws {
        for firing in firings {
            let automation = engine.automations.first { $0.id == firing.automationID }
            // Prefect runs `actions` and `actions_on_trigger` when an automation triggers (Tripline, like Prefect's
            // server, never resolves, so `actions_on_resolve` do not run).
            let actions = (automation?.actions ?? []) + (automation?.actionsOnTrigger ?? [])
            try transaction.recordFiring(firing, actions: actions, cooldown: automation?.cooldown)
            result.firings.append(firing)
            var posture: Posture?
            if case .event(let trigger)? = automation?.trigger { posture = trigger.posture }
            var event = firing.stateChangeEvent(posture: posture)
            if try transaction.insertEvent(event, received: received) {
                event.received = received
                result.stored.append(event)
                if depth < maximumFeedbackDepth { queue.append((event, depth + 1)) }
            }
        }
    }

    static func saveEngineState(_ state: inout EngineHost.State, transaction: any StoreTransaction) throws {
        let changes = state.engine.drainBucketChanges()
        if !changes.isEmpty { try transaction.saveBuckets(changes) }
        if state.engine.auxiliaryStateVersion != state.savedAuxiliaryVersion {
            try transaction.saveAuxiliaryState(state.engine.auxiliaryState)
            state.savedAuxiliaryVersion = state.engine.auxiliaryStateVersion
        }
    }

    /// Records what the engine holds in memory (open buckets, remembered event ids) in the metrics. Counting the
    /// buckets visits every trigger, so it runs when metrics are read, not per commit.
    public nonisolated func recordEngineSize() {
        let (buckets, remembered) = host.state.withLock { ($0.engine.store.count, $0.engine.rememberedEventCount) }
        metrics.openBuckets.record(buckets)
        metrics.rememberedEvents.record(remembered)
    }

    // MARK: - Proactive evaluation

    /// The next time ``tick(now:)`` has work, if any.
    public func nextDeadline() -> Instant? {
        host.state.withLock { $0.engine.nextDeadline }
    }

    /// The next deadline as the proactive scheduler sees it, with the token to pass to
    /// ``waitForDeadlineChange(after:timeout:)``; commits that bring no earlier deadline then leave it asleep.
    public func scheduleNextDeadline() -> (deadline: Instant?, generation: Int) {
        let deadline = nextDeadline()
        scheduledDeadline = deadline
        return (deadline, deadlineGeneration)
    }

    /// Runs every proactive evaluation due by `now` and records the firings. With one process on SQLite the ingest
    /// writer runs it in its next group commit (a tick costs no commit of its own under load); on a shared store the
    /// leader commits it.
    public func tick(now: Instant) async {
        guard leading else { return }
        let host = self.host
        let due = host.state.withLock { $0.engine.nextDeadline }
        guard let shared else {
            do {
                try await writer.tick(now: now)
                if let due, due <= now { metrics.proactiveLateness.recordMicroseconds(Int64(now.microseconds - due.microseconds)) }
            } catch {
                // The writer has already reloaded the engine after the failed commit.
                logger.error("proactive evaluation failed", metadata: ["error": "\(error)"])
            }
            return
        }
        do {
            let result = try await shared.writeAsLeader { transaction -> BatchResult in
                try host.state.withLock { state in
                    // Events stored before `now` and not evaluated yet come first: a deadline must not fire for lack of
                    // an event that arrived in time.
                    let waiting = try transaction.takeQueuedEvents(limit: 50_000)
                    var result = BatchResult()
                    if !waiting.isEmpty {
                        result = try Self.evaluate(queue: waiting.map { ($0, 0) }, now: now, state: &state, transaction: transaction, result: result)
                    }
                    return try Self.advance(to: now, state: &state, transaction: transaction, result: result)
                }
            }
            if let due, due <= now { metrics.proactiveLateness.recordMicroseconds(Int64(now.microseconds - due.microseconds)) }
            if !result.firings.isEmpty {
                outboxSignal.signal()
                metrics.firings.increment(by: result.firings.count)
                for firing in result.firings {
                    logger.info("automation fired (proactive)", metadata: ["automation": "\(firing.automationName)"])
                }
            }
            publish(result.stored)
        } catch {
            logger.error("proactive evaluation failed; reloading the engine state", metadata: ["error": "\(error)"])
            await recoverAfterFailedCommit()
        }
    }

    /// Moves the engine's clock to `now` inside `transaction`: records the proactive firings and evaluates the events
    /// they emit.
    static func advance(to now: Instant, state: inout EngineHost.State, transaction: any StoreTransaction, result: BatchResult) throws -> BatchResult {
        var result = result
        var queue: [(Event, Int)] = []
        let firings = state.engine.advance(to: now)
        try record(firings, depth: 0, received: now, engine: state.engine, transaction: transaction, result: &result, queue: &queue)
        var index = 0
        while index < queue.count {
            let (event, depth) = queue[index]
            index += 1
            let more = state.engine.process(event, now: now)
            try record(more, depth: depth, received: now, engine: state.engine, transaction: transaction, result: &result, queue: &queue)
        }
        try saveEngineState(&state, transaction: transaction)
        return result
    }

    // MARK: - Shared store: leadership and the evaluation queue

    /// Takes over the evaluation: loads the engine state the previous leader committed.
    public func becomeLeader() async throws {
        try await reloadEngineState()
        leading = true
        // Logged before the backlog runs, so that the log shows the takeover before the firings it makes.
        logger.info("this process now leads the evaluation of triggers")
        // First the events that waited while no process led, then every proactive deadline (scheduled again; those
        // that fell due in the meantime run now).
        while try await evaluateQueued(limit: 2_000) == 2_000 {}
        await tick(now: Instant(seconds: Date().timeIntervalSince1970))
        wakeDeadlineWaiters()
    }

    /// Stops evaluating (the leadership was lost): forgets the engine state, which the next leader loads from the
    /// database.
    public func resignLeadership() {
        leading = false
        let automations = self.automations
        let configuration = engineConfiguration
        host.state.withLock { $0 = EngineHost.State(engine: Engine(automations: automations, store: JournalingBucketStore(), configuration: configuration)) }
        wakeDeadlineWaiters()
    }

    /// Evaluates up to `limit` queued events in one leader transaction; returns how many it took.
    /// - Throws: When the leadership was lost or the transaction failed; the engine is then reloaded or dropped.
    public func evaluateQueued(limit: Int) async throws -> Int {
        guard let shared, leading else { return 0 }
        let host = self.host
        let started = DispatchTime.now().uptimeNanoseconds
        let (taken, result): (Int, BatchResult)
        do {
            (taken, result) = try await shared.writeAsLeader { transaction -> (Int, BatchResult) in
                let events = try transaction.takeQueuedEvents(limit: limit)
                guard !events.isEmpty else { return (0, BatchResult()) }
                let now = Instant(seconds: Date().timeIntervalSince1970)
                return try host.state.withLock { state in
                    let evaluationsBefore = state.engine.triggerEvaluations
                    var result = try Self.evaluate(
                        queue: events.map { ($0, 0) }, now: now, state: &state, transaction: transaction, result: BatchResult())
                    result.triggerEvaluations = state.engine.triggerEvaluations - evaluationsBefore
                    return (events.count, result)
                }
            }
        } catch {
            await recoverAfterFailedCommit()
            throw error
        }
        guard taken > 0 else { return 0 }
        metrics.evaluationLatency.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
        metrics.triggersEvaluated.increment(by: result.triggerEvaluations)
        if !result.firings.isEmpty {
            metrics.firings.increment(by: result.firings.count)
            outboxSignal.signal()
        }
        committed(result)
        return taken
    }

    /// Waits until the deadlines may have changed (events were evaluated or rules replaced) or `timeout` passes.
    /// - Parameter generation: From ``scheduleNextDeadline()``: a change since then returns at once.
    public func waitForDeadlineChange(after generation: Int, timeout: Duration) async {
        if generation != deadlineGeneration { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForWake(after: generation) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            wakeDeadlineWaiters()
        }
    }

    private func waitForWake(after generation: Int) async {
        if generation != deadlineGeneration { return }
        await withCheckedContinuation { deadlineWaiters.append($0) }
    }

    private func wakeDeadlineWaiters() {
        deadlineGeneration &+= 1
        let waiters = deadlineWaiters
        deadlineWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    // MARK: - Live feed

    /// A stream of every event as it is stored (including automation events). A subscriber that falls more than
    /// `buffer` events behind loses the oldest ones (counted and logged, see ``LiveFeed``).
    public func subscribe(buffer: Int = 10_000) -> (id: UUID, events: AsyncStream<Event>) {
        let subscription = feed.subscribe(buffer: buffer) { [weak self] id in
            Task { await self?.unsubscribe(id) }
        }
        metrics.liveSubscribers.record(feed.count)
        return subscription
    }

    /// Ends a subscription.
    public func unsubscribe(_ id: UUID) {
        feed.unsubscribe(id)
        metrics.liveSubscribers.record(feed.count)
    }

    private func publish(_ events: [Event]) {
        feed.publish(events)
    }

    /// Ends every subscription (shutdown).
    public func finishSubscribers() {
        feed.finishAll()
    }

    /// The number of open buckets.
    public func openBuckets() -> Int { host.state.withLock { $0.engine.store.count } }
}
