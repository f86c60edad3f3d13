public import Foundation

/// Where an action's delivery stands.
public enum DeliveryStatus: String, Sendable, Hashable, CaseIterable {
    /// Waiting for its first or next attempt.
    case pending
    /// Done.
    case delivered
    /// Out of attempts, or failed in a way that retrying cannot fix; can be re-driven.
    case dead
    /// Not run: the automation was in its cooldown when it fired.
    case suppressed
}

/// One attempt at running an action.
public struct DeliveryAttempt: Sendable, Hashable {
    /// Whether it worked.
    public enum Outcome: String, Sendable, Hashable {
        /// The target accepted it.
        case success
        /// It failed and will be tried again.
        case retry
        /// It failed and will not be tried again.
        case failure
    }

    /// 1 for the first attempt.
    public var number: Int
    /// When it started.
    public var started: Instant
    /// How long it took.
    public var duration: TimeSpan
    /// The outcome.
    public var outcome: Outcome
    /// The target's HTTP status, when there was an answer.
    public var statusCode: Int?
    /// What went wrong, free of secrets.
    public var error: String?

    /// Creates an attempt record.
    public init(number: Int, started: Instant, duration: TimeSpan, outcome: Outcome, statusCode: Int? = nil, error: String? = nil) {
        self.number = number
        self.started = started
        self.duration = duration
        self.outcome = outcome
        self.statusCode = statusCode
        self.error = error
    }

    /// The attempt as the API shows it.
    public var jsonValue: JSONValue {
        .object([
            "attempt": .int(Int64(number)), "started": .string(started.rfc3339), "duration_ms": .double(Double(duration.microseconds) / 1000),
            "outcome": .string(outcome.rawValue), "status_code": statusCode.map { .int(Int64($0)) } ?? .null,
            "error": error.map(JSONValue.string) ?? .null,
        ])
    }
}

/// An outbox entry as the deliveries API shows it.
public struct Delivery: Sendable, Hashable {
    /// The entry's id, `<firing id>/<action index>`.
    public var id: String
    /// The firing.
    public var firingID: UUID
    /// The automation.
    public var automationID: UUID
    /// Its name when it fired.
    public var automationName: String
    /// The action's index.
    public var actionIndex: Int
    /// The action's type.
    public var actionType: String
    /// Where it stands.
    public var status: DeliveryStatus
    /// Attempts made.
    public var attemptCount: Int
    /// When the next attempt is due (pending entries).
    public var availableAt: Instant
    /// When it was created.
    public var created: Instant
    /// The last error, when the last attempt failed.
    public var lastError: String?
    /// The attempts, when asked for.
    public var attempts: [DeliveryAttempt]

    /// Creates a delivery record.
    public init(
        id: String, firingID: UUID, automationID: UUID, automationName: String, actionIndex: Int, actionType: String, status: DeliveryStatus,
        attemptCount: Int, availableAt: Instant, created: Instant, lastError: String? = nil, attempts: [DeliveryAttempt] = []
    ) {
        self.id = id
        self.firingID = firingID
        self.automationID = automationID
        self.automationName = automationName
        self.actionIndex = actionIndex
        self.actionType = actionType
        self.status = status
        self.attemptCount = attemptCount
        self.availableAt = availableAt
        self.created = created
        self.lastError = lastError
        self.attempts = attempts
    }

    /// The delivery as the API shows it; `attempts` only when `withAttempts`.
    public func jsonValue(withAttempts: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id), "firing_id": .string(firingID.lowercasedText),
            "automation_id": .string(automationID.lowercasedText), "automation": .string(automationName),
            "action_index": .int(Int64(actionIndex)), "action_type": .string(actionType), "status": .string(status.rawValue),
            "attempt_count": .int(Int64(attemptCount)), "available_at": .string(availableAt.rfc3339), "created": .string(created.rfc3339),
            "last_error": lastError.map(JSONValue.string) ?? .null,
            "idempotency_key": .string(
                OutboxEntry(
                    id: id, firingID: firingID, automationID: automationID, automationName: automationName, actionIndex: actionIndex,
                    action: Action(type: actionType), firedAt: created
                ).idempotencyKey),
        ]
        if withAttempts { object["attempts"] = .array(attempts.map(\.jsonValue)) }
        return .object(object)
    }
}

/// Reading and re-driving deliveries, for `/api/deliveries` and `tripline deliveries`.
public protocol DeliveryLog: Sendable {
    /// Deliveries, newest first, optionally of one automation and in one status.
    func deliveries(automation: UUID?, status: DeliveryStatus?, limit: Int) async throws -> [Delivery]
    /// One delivery with its attempts.
    func delivery(id: String) async throws -> Delivery?
    /// Makes a dead (or suppressed) delivery pending again, due at `now`, keeping its attempts and idempotency key.
    /// - Returns: Whether the delivery existed and was dead or suppressed.
    func redrive(id: String, now: Instant) async throws -> Bool
}
