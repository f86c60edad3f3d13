public import Foundation

/// One request to a webhook endpoint, accepted or rejected, as the delivery history shows it (like GitHub's
/// "Recent deliveries").
public struct WebhookDelivery: Sendable, Hashable {
    /// Assigned by the store; 0 before it is stored.
    public var id: Int64
    /// The endpoint's slug.
    public var slug: String
    /// When the request arrived.
    public var received: Instant
    /// The HTTP method.
    public var method: String
    /// The status answered.
    public var status: Int
    /// `accepted` (events stored), `ignored` (acknowledged, nothing stored) or `rejected`.
    public var outcome: String
    /// The rejection's reason code (`bad_signature`…) or the note of an accepted delivery.
    public var code: String?
    /// A short reason or note, safe to show (it never contains a secret).
    public var reason: String?
    /// The ids of the events stored.
    public var eventIDs: [UUID]
    /// How many of them were already stored (a redelivery).
    public var duplicates: Int
    /// Time from arrival to answer, in microseconds.
    public var latencyMicroseconds: Int64
    /// The body's size in bytes.
    public var size: Int
    /// The body's content type.
    public var contentType: String?
    /// The request id (also in the logs).
    public var requestID: String?
    /// The body of a failed delivery, kept only when the endpoint allows it.
    public var body: [UInt8]?

    /// Creates a record.
    public init(
        id: Int64 = 0, slug: String, received: Instant, method: String, status: Int, outcome: String, code: String? = nil, reason: String? = nil,
        eventIDs: [UUID] = [], duplicates: Int = 0, latencyMicroseconds: Int64 = 0, size: Int = 0, contentType: String? = nil, requestID: String? = nil,
        body: [UInt8]? = nil
    ) {
        self.id = id
        self.slug = slug
        self.received = received
        self.method = method
        self.status = status
        self.outcome = outcome
        self.code = code
        self.reason = reason
        self.eventIDs = eventIDs
        self.duplicates = duplicates
        self.latencyMicroseconds = latencyMicroseconds
        self.size = size
        self.contentType = contentType
        self.requestID = requestID
        self.body = body
    }

    /// The record as the API shows it (the body, when kept, as base64 under `body_base64`).
    public func jsonValue(includeBody: Bool) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .int(id), "slug": .string(slug), "received": .string(received.rfc3339), "method": .string(method), "status": .int(Int64(status)),
            "outcome": .string(outcome), "code": code.map(JSONValue.string) ?? .null, "reason": reason.map(JSONValue.string) ?? .null,
            "event_ids": .array(eventIDs.map { .string($0.lowercasedText) }), "duplicates": .int(Int64(duplicates)),
            "latency_ms": .double(Double(latencyMicroseconds) / 1000), "size": .int(Int64(size)),
            "content_type": contentType.map(JSONValue.string) ?? .null, "request_id": requestID.map(JSONValue.string) ?? .null,
            "body_kept": .bool(body != nil),
        ]
        if includeBody, let body { object["body_base64"] = .string(Data(body).base64EncodedString()) }
        return .object(object)
    }
}

/// Where webhook deliveries are recorded. Implemented by TriplineStorage.
public protocol WebhookDeliveryLog: Sendable {
    /// Stores records (one transaction for all of them).
    func recordDeliveries(_ deliveries: [WebhookDelivery]) async throws
    /// The newest deliveries of `slug`, newest first; `outcome` filters; `before` pages (ids below it).
    func deliveries(slug: String, outcome: String?, before: Int64?, limit: Int) async throws -> [WebhookDelivery]
    /// One delivery by id.
    func delivery(id: Int64) async throws -> WebhookDelivery?
    /// Deletes deliveries received before `cutoff`; returns how many.
    func deleteDeliveries(receivedBefore cutoff: Instant, limit: Int) async throws -> Int
}
