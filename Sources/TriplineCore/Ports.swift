public import Foundation
import Synchronization

/// A page of stored events, newest or oldest first as the filter asked.
public struct EventPage: Sendable {
    /// The events, each with its `received` time.
    public var events: [Event]
    /// How many events match the filter in all.
    public var total: Int

    /// Creates a page.
    public init(events: [Event], total: Int) {
        self.events = events
        self.total = total
    }
}

/// An automation created through the API, as stored.
public struct StoredAutomation: Sendable {
    /// The automation.
    public var automation: Automation
    /// When it was created.
    public var created: Instant
    /// When it was last changed.
    public var updated: Instant

    /// Creates a record.
    public init(automation: Automation, created: Instant, updated: Instant) {
        self.automation = automation
        self.created = created
        self.updated = updated
    }
}

/// A firing as recorded.
public struct FiringRecord: Sendable {
    /// The firing.
    public var firing: Firing
    /// The actions stored for the dispatcher.
    public var actionCount: Int

    /// Creates a record.
    public init(firing: Firing, actionCount: Int) {
        self.firing = firing
        self.actionCount = actionCount
    }
}

/// The writes of one durable transaction: everything an ingest batch or a proactive tick changes is written
/// through one of these, so that events, engine state, firings and their actions commit together or not at all.
public protocol StoreTransaction {
    /// Stores an event unless one with its id exists.
    /// - Parameter encoded: The event's ``Event/storageText`` when the caller computed it already (ingest does, on
    ///   the request's thread, so that the single writer does not spend its time serializing payloads).
    /// - Returns: Whether the event was new.
    func insertEvent(_ event: Event, received: Instant, encoded: String?) throws -> Bool
    /// Writes changed buckets (`nil` removes).
    func saveBuckets(_ changes: [(address: BucketAddress, bucket: Bucket?)]) throws
    /// Replaces the engine's auxiliary state.
    func saveAuxiliaryState(_ state: JSONValue) throws
    /// Records a firing and puts its actions in the outbox, keyed by (firing, action index). When `cooldown` is
    /// given and another firing of the automation ran its actions less than `cooldown` before this one, the firing is
    /// recorded as suppressed and its actions are stored as `suppressed` (they do not run).
    func recordFiring(_ firing: Firing, actions: [Action], cooldown: TimeSpan?) throws
    /// Records finished outbox entries: their attempts and what happens next (see ``Outbox/finish(_:)``).
    func finishOutbox(_ results: [OutboxResult]) throws
    /// Stores several events received together, each unless one with its id exists (also earlier in `events`).
    /// - Parameter encoded: The events' ``Event/storageText`` where the caller computed them (same order), or empty.
    /// - Returns: For each event, whether it was new.
    func insertEvents(_ events: [Event], encoded: [String], received: Instant) throws -> [Bool]
    /// Takes up to `limit` stored events that wait for evaluation, oldest first, and removes them from the queue when
    /// the transaction commits (a store shared by several processes queues every new event for the one process that
    /// evaluates; see ``SharedStore``). Stores that evaluate in the ingest transaction have no queue.
    func takeQueuedEvents(limit: Int) throws -> [Event]
    /// The engine state as committed, read inside the transaction (a shared store's leader reloads it this way, so
    /// that the reload is serialized with its evaluations).
    func loadEngineState() throws -> (buckets: [Bucket], auxiliary: JSONValue?)
}

extension StoreTransaction {
    public func insertEvents(_ events: [Event], encoded: [String], received: Instant) throws -> [Bool] {
        try events.enumerated().map { index, event in
            try insertEvent(event, received: received, encoded: index < encoded.count ? encoded[index] : nil)
        }
    }

    public func takeQueuedEvents(limit: Int) throws -> [Event] { [] }

    public func loadEngineState() throws -> (buckets: [Bucket], auxiliary: JSONValue?) {
        throw TriplineError(.io, "this store reads the engine state outside transactions")
    }
}

extension StoreTransaction {
    /// Records a firing without a cooldown.
    public func recordFiring(_ firing: Firing, actions: [Action]) throws {
        try recordFiring(firing, actions: actions, cooldown: nil)
    }
}

extension StoreTransaction {
    /// Stores an event unless one with its id exists; returns whether it was new.
    public func insertEvent(_ event: Event, received: Instant) throws -> Bool {
        try insertEvent(event, received: received, encoded: nil)
    }
}

extension DurableStore {
    /// Stored events matching `filter`, `limit` of them after skipping `offset`, with how many match in all (one pass;
    /// only the page is kept).
    public func events(matching filter: EventFilter, limit: Int, offset: Int) async throws -> EventPage {
        let page = Mutex(EventPage(events: [], total: 0))
        try await forEachEvent(matching: filter) { event in
            page.withLock { page in
                if page.total >= offset, page.events.count < limit { page.events.append(event) }
                page.total += 1
            }
            return true
        }
        return page.withLock { $0 }
    }
}

/// The durable store behind the server: events, automations created through the API, engine state, firings and
/// the action outbox. Implemented by TriplineStorage (SQLite now, PostgreSQL later).
public protocol DurableStore: Sendable {
    /// Runs `body` in one write transaction; commits when it returns, rolls back when it throws.
    func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T
    /// The same, blocking the calling thread until the commit.
    /// - Important: Call only from a thread of your own, never from Swift concurrency's cooperative pool.
    func writeBlocking<T>(_ body: (any StoreTransaction) throws -> T) throws -> T
    /// Visits the stored events matching `filter`, in the filter's order, one at a time, until `visit` returns
    /// false; nothing is kept beyond the event being visited.
    func forEachEvent(matching filter: EventFilter, _ visit: @escaping @Sendable (Event) -> Bool) async throws
    /// The engine state saved by earlier transactions: every bucket, and the auxiliary state.
    func loadEngineState() async throws -> (buckets: [Bucket], auxiliary: JSONValue?)
    /// Automations created through the API.
    func storedAutomations() async throws -> [StoredAutomation]
    /// Creates or replaces an API automation.
    func saveAutomation(_ automation: StoredAutomation) async throws
    /// Deletes an API automation; returns whether it existed.
    func deleteAutomation(id: UUID) async throws -> Bool
    /// The most recent firings, newest first.
    func recentFirings(limit: Int) async throws -> [FiringRecord]
    /// Deletes events received before `cutoff` (retention); returns how many. Retention counts from when Tripline
    /// received an event, not from its `occurred` time, so that a late or replayed delivery of an old event (a
    /// Stripe redelivery, a backfill) is kept for the full period.
    func deleteEvents(receivedBefore cutoff: Instant, limit: Int) async throws -> Int
}

/// A durable store that several Tripline processes share (PostgreSQL). Any process stores events; each new event is
/// also queued for evaluation, and exactly one process at a time — the leader — evaluates the queue and runs the
/// proactive deadlines, in transactions that only commit while it still holds the leadership. So a bucket is updated
/// by one evaluator at a time and a firing is recorded once, however many processes ingest.
public protocol SharedStore: DurableStore {
    /// Whether this process leads; tries to take the leadership when it does not. Never blocks for long.
    func tryLead() async -> Bool
    /// Runs `body` in one transaction that commits only while this process leads.
    /// - Throws: When the leadership was lost (the session holding it ended) or the transaction failed.
    func writeAsLeader<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T
    /// Gives the leadership up (shutdown), so that another process takes over at once.
    func resign() async
    /// A number that changes whenever an automation is created, replaced or deleted through any process.
    func automationsVersion() async throws -> Int64
    /// Returns when events were queued for evaluation by any process, or after `timeout`.
    func waitForQueuedEvents(timeout: Duration) async
    /// How many stored events wait for evaluation.
    func queuedEventCount() async throws -> Int
}

/// Sends events into the event log (the action layer's own events, and `emit-event`).
public protocol EventSink: Sendable {
    /// Stores `events` durably (and evaluates them like any other event).
    func emit(_ events: [Event]) async throws
}

/// Pauses and resumes automations (`pause-automation`, `resume-automation`).
public protocol AutomationControl: Sendable {
    /// Enables or disables the automation.
    /// - Throws: A ``TriplineError`` when there is no such automation.
    func setEnabled(_ automationID: UUID, _ enabled: Bool) async throws
}
