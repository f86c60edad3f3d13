internal import Foundation
internal import TriplineCore

extension WebhookProcessor {
    /// Whether `body` looks like an SNS envelope.
    static func isSNSEnvelope(_ body: [String: JSONValue]) -> Bool {
        body["Type"]?.stringValue != nil && body["TopicArn"]?.stringValue != nil && body["Signature"] != nil
    }

    /// An SNS HTTP(S) delivery: verified with the signing certificate, the topic checked against the endpoint's
    /// list, subscriptions confirmed, notifications mapped (S3 notifications unwrapped into S3 events).
    /// - Parameter s3Only: The `aws-s3` preset: notifications that are not S3 notifications are acknowledged and ignored.
    func snsMessage(_ request: WebhookRequest, s3Only: Bool, parsed: [String: JSONValue]? = nil) async throws(WebhookRejection) -> WebhookResult {
        let body: [String: JSONValue]
        if let parsed {
            body = parsed
        } else {
            // SNS posts `text/plain; charset=UTF-8`; JSON types are accepted too (relays, tests).
            if let mediaType = request.mediaType, !MediaType.isJSON(mediaType), mediaType != "text/plain" {
                throw .unsupportedMediaType("SNS messages are text/plain or JSON, not \(mediaType)")
            }
            body = try Self.jsonObject(request.body)
        }
        let message = try await verifiedSNSMessage(body)
        if let handled = try await handleSNSControlMessage(message) { return handled }
        let topic = message.fields["TopicArn"] ?? ""
        let text = message.fields["Message"] ?? ""
        if case .object(let inner)? = try? JSONValue.parse(text) {
            if let s3 = S3Notifications.events(from: inner, received: request.received, webhook: webhookResource) {
                return WebhookResult(events: s3.events, note: s3.note)
            }
        }
        if s3Only { return .acknowledged("SNS notification without S3 records ignored") }
        let messageID = message.fields["MessageId"] ?? ""
        var payload: [String: JSONValue] = [
            "message": (try? JSONValue.parse(text)) ?? .string(text), "message_id": .string(messageID), "topic_arn": .string(topic),
            "timestamp": .string(message.fields["Timestamp"] ?? ""),
        ]
        if let subject = message.fields["Subject"] { payload["subject"] = .string(subject) }
        if let attributes = body["MessageAttributes"] { payload["message_attributes"] = attributes }
        var resource = [Resource.idLabel: "aws.sns.topic.\(topic)", "aws.sns.topic_arn": topic]
        if let subject = message.fields["Subject"] { resource["aws.sns.subject"] = subject }
        let occurred = message.fields["Timestamp"].flatMap { Instant(rfc3339: $0) } ?? request.received
        let event = Event(
            id: UUID.eventID(from: messageID, prefix: "sns"), occurred: occurred, event: "aws.sns.Notification", resource: Resource(resource),
            related: [webhookResource], payload: payload, received: request.received)
        return WebhookResult(events: [event], note: "aws.sns.Notification")
    }

    /// An SNS message from an allowed topic whose signature verifies.
    func verifiedSNSMessage(_ body: [String: JSONValue]) async throws(WebhookRejection) -> SNSMessage {
        let message = try SNSMessage(body)
        let topic = message.fields["TopicArn"] ?? ""
        guard endpoint.topics.contains(where: { Glob($0).matches(topic) }) else {
            throw .forbidden("topic_not_allowed", "messages from this topic are not accepted here")
        }
        try message.verify(with: try await aws.certificate(at: message.fields["SigningCertURL"] ?? "", topicArn: topic))
        return message
    }

    /// Handles the messages that are not notifications (subscription confirmations); `nil` for a notification.
    func handleSNSControlMessage(_ message: SNSMessage) async throws(WebhookRejection) -> WebhookResult? {
        let topic = message.fields["TopicArn"] ?? ""
        switch message.type {
        case "SubscriptionConfirmation":
            guard endpoint.confirmSubscriptions else { return .acknowledged("subscription confirmation received; confirm_subscriptions is off") }
            try await aws.confirm(subscribeURL: message.fields["SubscribeURL"] ?? "")
            return .acknowledged("subscription to \(topic) confirmed")
        case "UnsubscribeConfirmation":
            return .acknowledged("unsubscribed from \(topic)")
        case "Notification":
            return nil
        default:
            throw .malformed("unknown SNS message type")
        }
    }

    /// The `aws-s3` preset: S3 event notifications posted directly, as a Lambda-style SQS batch, as EventBridge
    /// events, or inside SNS envelopes (which are verified like the aws-sns preset).
    func s3(_ request: WebhookRequest) async throws(WebhookRejection) -> WebhookResult {
        if let mediaType = request.mediaType, !MediaType.isJSON(mediaType), mediaType != "text/plain" {
            throw .unsupportedMediaType("S3 notifications are JSON, not \(mediaType)")
        }
        let body = try Self.jsonObject(request.body)
        if Self.isSNSEnvelope(body) {
            // Without topics an SNS message could be neither verified nor confirmed: refuse it (SNS retries) rather
            // than acknowledge and lose it.
            guard !endpoint.topics.isEmpty else {
                throw .forbidden(
                    "topic_not_allowed", "this endpoint accepts SNS messages only from the topics listed in its `topics`, and it lists none")
            }
            return try await snsMessage(request, s3Only: true, parsed: body)
        }
        try authenticateByConfiguration(request)
        if let s3 = S3Notifications.events(from: body, received: request.received, webhook: webhookResource) {
            return WebhookResult(events: s3.events, note: s3.note)
        }
        return .acknowledged("no S3 records in the body; ignored")
    }
}
