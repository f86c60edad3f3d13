public import TriplineCore

/// Runs one type of action (or a few closely related ones). Adding an action type is one new type conforming to this
/// protocol and one line in ``ActionHandlers/standard(client:)``.
public protocol ActionHandler: Sendable {
    /// The action `type`s this handler runs.
    var actionTypes: [String] { get }
    /// Runs the action once.
    /// - Returns: What the target answered, for the attempt record and the `executed` event.
    /// - Throws: An ``ActionFailure`` saying whether trying again may help. Any other error counts as a network
    ///   error (retried).
    func run(_ execution: ActionExecution) async throws -> ActionSuccess
}

/// What a successful action reports.
public struct ActionSuccess: Sendable {
    /// The target's HTTP status, when it was an HTTP call.
    public var statusCode: Int?
    /// Resources the action touched, added to the `executed` event's related resources.
    public var related: [Resource]
    /// Extra details for the `executed` event's payload (never secrets).
    public var details: [String: JSONValue]

    /// Creates a success report.
    public init(statusCode: Int? = nil, related: [Resource] = [], details: [String: JSONValue] = [:]) {
        self.statusCode = statusCode
        self.related = related
        self.details = details
    }
}

/// Why an action failed, and whether another attempt may succeed.
public struct ActionFailure: Error, Sendable, CustomStringConvertible {
    /// Whether the failure is worth retrying.
    public enum Kind: String, Sendable {
        /// Network errors, 5xx and 429 answers: tried again with backoff.
        case retriable
        /// Other 4xx answers, template and configuration errors: never tried again.
        case permanent
    }

    /// Retriable or not.
    public var kind: Kind
    /// What went wrong, free of secrets.
    public var reason: String
    /// The target's HTTP status, when there was an answer.
    public var statusCode: Int?
    /// How long the target asked us to wait (`Retry-After`).
    public var retryAfter: TimeSpan?

    /// Creates a failure.
    public init(_ kind: Kind, _ reason: String, statusCode: Int? = nil, retryAfter: TimeSpan? = nil) {
        self.kind = kind
        self.reason = reason
        self.statusCode = statusCode
        self.retryAfter = retryAfter
    }

    /// A configuration problem (unknown destination, unset secret): not retried.
    public static func configuration(_ reason: String) -> ActionFailure { ActionFailure(.permanent, "configuration: \(reason)") }

    /// A template that does not render: not retried.
    public static func template(field: String, _ error: TriplineError) -> ActionFailure {
        ActionFailure(.permanent, "template error in \(field): \(error.description)")
    }

    /// The failure for an HTTP answer that is not a success: 429 and 5xx are retried, other statuses are not.
    public static func http(status: Int, reason: String, retryAfter: TimeSpan?) -> ActionFailure {
        let retriable = status == 429 || status >= 500
        return ActionFailure(retriable ? .retriable : .permanent, "HTTP \(status): \(reason)", statusCode: status, retryAfter: retryAfter)
    }

    public var description: String { reason }
}
