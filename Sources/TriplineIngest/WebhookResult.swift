public import TriplineCore

/// What a webhook endpoint made of a request: the events to store and the answer to give once they are durable.
public struct WebhookResult: Sendable {
    /// The events to store (none for a ping, a subscription confirmation or an ignored notification).
    public var events: [Event]
    /// The status to answer with once the events are durable.
    public var status: Int
    /// The body to answer with (empty for none) and its content type.
    public var body: [UInt8]
    public var contentType: String?
    /// A short note for the delivery record, e.g. "s3:TestEvent ignored".
    public var note: String?

    /// Creates a result.
    public init(events: [Event], status: Int = 200, body: [UInt8] = [], contentType: String? = nil, note: String? = nil) {
        self.events = events
        self.status = status
        self.body = body
        self.contentType = contentType
        self.note = note
    }

    /// A result that stores nothing and answers 200.
    public static func acknowledged(_ note: String) -> WebhookResult { WebhookResult(events: [], note: note) }
}

/// Why a webhook request was refused: an HTTP status, a short reason safe to show the sender (it never contains a
/// secret or a computed signature), and a reason code for metrics.
public struct WebhookRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status to answer with.
    public var status: Int
    /// A metric label: `bad_signature`, `missing_signature`, `stale_timestamp`, `malformed`, `unsupported_media_type`…
    public var code: String
    /// A short, safe reason.
    public var reason: String

    /// Creates a rejection.
    public init(_ status: Int, _ code: String, _ reason: String) {
        self.status = status
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(status) \(code): \(reason)" }

    static func unauthorized(_ code: String, _ reason: String) -> WebhookRejection { WebhookRejection(401, code, reason) }
    static func malformed(_ reason: String) -> WebhookRejection { WebhookRejection(400, "malformed", reason) }
    static func unsupportedMediaType(_ reason: String) -> WebhookRejection { WebhookRejection(415, "unsupported_media_type", reason) }
    static func forbidden(_ code: String, _ reason: String) -> WebhookRejection { WebhookRejection(403, code, reason) }
}
