public import Foundation

/// One action of one firing, waiting in the durable outbox or being delivered.
public struct OutboxEntry: Sendable, Hashable {
    /// `<firing id>/<action index>`.
    public var id: String
    /// The firing.
    public var firingID: UUID
    /// The automation that fired.
    public var automationID: UUID
    /// Its name when it fired.
    public var automationName: String
    /// The action's position in the automation's `actions`.
    public var actionIndex: Int
    /// The action, as stored with the firing.
    public var action: Action
    /// Attempts made so far.
    public var attempts: Int
    /// Attempts made before the entry was last re-driven from the dead letters; the retry policy counts from here.
    public var attemptBase: Int
    /// The event that caused the firing, when it is still stored.
    public var triggeringEvent: Event?
    /// The firing's `for_each` labels.
    public var bucketingLabels: [String: String]
    /// When the firing happened.
    public var firedAt: Instant

    /// Creates an entry.
    public init(
        id: String, firingID: UUID, automationID: UUID, automationName: String, actionIndex: Int, action: Action, attempts: Int = 0,
        attemptBase: Int = 0, triggeringEvent: Event? = nil, bucketingLabels: [String: String] = [:], firedAt: Instant
    ) {
        self.id = id
        self.firingID = firingID
        self.automationID = automationID
        self.automationName = automationName
        self.actionIndex = actionIndex
        self.action = action
        self.attempts = attempts
        self.attemptBase = attemptBase
        self.triggeringEvent = triggeringEvent
        self.bucketingLabels = bucketingLabels
        self.firedAt = firedAt
    }

    /// The idempotency key: derived from (automation, firing, action index) only, so it is the same on every attempt
    /// and after a restart. Passed on to targets that honour one.
    public var idempotencyKey: String {
        "tripline-" + UUID(stableName: "action:\(automationID.uuidString):\(firingID.uuidString):\(actionIndex)").lowercasedText
    }
}

/// What an attempt (or a decision not to attempt) leads to.
public enum OutboxDisposition: Sendable, Hashable {
    /// The action succeeded; the entry is done.
    case delivered
    /// Try again at the given time.
    case retry(at: Instant)
    /// No more attempts; the entry goes to the dead letters with the reason.
    case dead(reason: String)
    /// Not attempted (rate limit): wait until the given time without counting an attempt.
    case deferred(until: Instant)
}

/// The outcome of working on one outbox entry.
public struct OutboxResult: Sendable {
    /// The entry.
    public var entryID: String
    /// The attempt made, if one was.
    public var attempt: DeliveryAttempt?
    /// What happens next.
    public var disposition: OutboxDisposition

    /// Creates a result.
    public init(entryID: String, attempt: DeliveryAttempt?, disposition: OutboxDisposition) {
        self.entryID = entryID
        self.attempt = attempt
        self.disposition = disposition
    }
}

/// The durable outbox the dispatcher works from: entries are written with their firing (see
/// ``StoreTransaction/recordFiring(_:actions:cooldown:)``), claimed, and finished with an outcome.
public protocol Outbox: Sendable {
    /// Claims up to `limit` entries that are due at `now` and not claimed already. A claim lasts until the entry is
    /// finished or the process ends, so that after a restart every unfinished entry is due again.
    func claim(limit: Int, now: Instant) async throws -> [OutboxEntry]
    /// Records attempts and outcomes, all in one transaction, and releases the claims.
    func finish(_ results: [OutboxResult]) async throws
    /// When the earliest unclaimed pending entry falls due, if there is one.
    func nextDue() async throws -> Instant?
}

/// Records finished outbox entries together with the events their attempts produced, in one transaction: the
/// server's pipeline implements it, so that the action events are evaluated like any other and the results cost no
/// transaction of their own.
public protocol OutboxRecorder: Sendable {
    /// Stores `events`, records `results`, and releases the entries' claims once that is durable.
    func record(_ results: [OutboxResult], events: [Event]) async throws
}
