internal import Foundation
public import TriplineCore

/// S3 event notifications in every shape they arrive in: S3's own `{"Records": [...]}`, a Lambda-style SQS batch
/// whose bodies are S3 notifications (or SNS envelopes of them), and EventBridge "Object …" events.
public enum S3Notifications {
    /// The events of an S3-shaped document, or `nil` when it is not one.
    /// - Returns: One event per object record; none (with a note) for `s3:TestEvent`.
    public static func events(from body: [String: JSONValue], received: Instant, webhook: Resource?) -> (events: [Event], note: String)? {
        if body["Event"]?.stringValue == "s3:TestEvent" { return ([], "s3:TestEvent acknowledged and ignored") }
        if case .array(let records)? = body["Records"] {
            var events: [Event] = []
            var sawS3 = false
            for record in records {
                guard case .object(let fields) = record else { continue }
                if fields["s3"] != nil {
                    sawS3 = true
                    if let event = recordEvent(fields, received: received, webhook: webhook) { events.append(event) }
                } else if fields["eventSource"]?.stringValue == "aws:sqs", case .string(let text)? = fields["body"],
                    case .object(let inner)? = try? JSONValue.parse(text)
                {
                    // SQS: the body is an S3 notification, or an SNS envelope around one.
                    var document = inner
                    if inner["Type"]?.stringValue == "Notification", case .string(let message)? = inner["Message"],
                        case .object(let unwrapped)? = try? JSONValue.parse(message)
                    {
                        document = unwrapped
                    }
                    if let nested = S3Notifications.events(from: document, received: received, webhook: webhook) {
                        sawS3 = true
                        events += nested.events
                    }
                }
            }
            guard sawS3 else { return nil }
            return (events, "\(events.count) S3 object event\(events.count == 1 ? "" : "s")")
        }
        if body["source"]?.stringValue == "aws.s3", let detailType = body["detail-type"]?.stringValue, case .object(let detail)? = body["detail"] {
            guard let event = eventBridgeEvent(detailType: detailType, body: body, detail: detail, received: received, webhook: webhook) else {
                return ([], "EventBridge \(detailType) without bucket/key ignored")
            }
            return ([event], event.event)
        }
        return nil
    }

    /// One S3 notification record as an event: `aws.s3.<eventName>` on `aws.s3.bucket.<bucket>`, the key decoded.
    static func recordEvent(_ record: [String: JSONValue], received: Instant, webhook: Resource?) -> Event? {
        let value = JSONValue.object(record)
        guard let bucket = value[path: "s3.bucket.name"]?.stringValue, let rawKey = value[path: "s3.object.key"]?.stringValue else { return nil }
        var eventName = record["eventName"]?.stringValue ?? "Unknown"
        if eventName.hasPrefix("s3:") { eventName.removeFirst(3) }
        let key = FormDecoding.unescape(rawKey)
        let size = value[path: "s3.object.size"]
        let etag = value[path: "s3.object.eTag"]?.stringValue
        let sequencer = value[path: "s3.object.sequencer"]?.stringValue
        var payload: [String: JSONValue] = [
            "bucket": .string(bucket), "key": .string(key), "event_name": .string(eventName), "record": value,
        ]
        if let size { payload["size"] = size }
        if let etag { payload["etag"] = .string(etag) }
        if let sequencer { payload["sequencer"] = .string(sequencer) }
        if let version = value[path: "s3.object.versionId"]?.stringValue { payload["version_id"] = .string(version) }
        if let region = record["awsRegion"]?.stringValue { payload["region"] = .string(region) }
        let occurred = record["eventTime"]?.stringValue.flatMap { Instant(rfc3339: $0) } ?? received
        return event(
            name: eventName, bucket: bucket, key: key, size: size, etag: etag, sequencer: sequencer, region: record["awsRegion"]?.stringValue, payload: payload,
            occurred: occurred, received: received, webhook: webhook, fallbackIdentity: value.jsonText)
    }

    /// EventBridge detail types and reasons, as the names S3 notifications use.
    static func eventBridgeName(detailType: String, reason: String?, deletionType: String?) -> String {
        switch detailType {
        case "Object Created":
            let kind: String
            switch reason {
            case "PutObject"?: kind = "Put"
            case "POST Object"?: kind = "Post"
            case "CopyObject"?: kind = "Copy"
            case "CompleteMultipartUpload"?: kind = "CompleteMultipartUpload"
            default: kind = "*"
            }
            return "ObjectCreated:\(kind == "*" ? (reason ?? "Unknown") : kind)"
        case "Object Deleted":
            return deletionType == "Delete Marker Created" ? "ObjectRemoved:DeleteMarkerCreated" : "ObjectRemoved:Delete"
        default:
            return detailType.split(separator: " ").joined()
        }
    }

    static func eventBridgeEvent(detailType: String, body: [String: JSONValue], detail: [String: JSONValue], received: Instant, webhook: Resource?) -> Event? {
        let value = JSONValue.object(detail)
        guard let bucket = value[path: "bucket.name"]?.stringValue, let key = value[path: "object.key"]?.stringValue else { return nil }
        let name = eventBridgeName(detailType: detailType, reason: detail["reason"]?.stringValue, deletionType: detail["deletion-type"]?.stringValue)
        let size = value[path: "object.size"]
        let etag = value[path: "object.etag"]?.stringValue
        let sequencer = value[path: "object.sequencer"]?.stringValue
        var payload: [String: JSONValue] = [
            "bucket": .string(bucket), "key": .string(key), "event_name": .string(name), "detail_type": .string(detailType), "record": .object(body),
        ]
        if let size { payload["size"] = size }
        if let etag { payload["etag"] = .string(etag) }
        if let sequencer { payload["sequencer"] = .string(sequencer) }
        if let version = value[path: "object.version-id"]?.stringValue { payload["version_id"] = .string(version) }
        if let region = body["region"]?.stringValue { payload["region"] = .string(region) }
        let occurred = body["time"]?.stringValue.flatMap { Instant(rfc3339: $0) } ?? received
        return event(
            name: name, bucket: bucket, key: key, size: size, etag: etag, sequencer: sequencer, region: body["region"]?.stringValue, payload: payload,
            occurred: occurred, received: received, webhook: webhook, fallbackIdentity: body["id"]?.stringValue ?? JSONValue.object(body).jsonText)
    }

    static func event(
        name: String, bucket: String, key: String, size: JSONValue?, etag: String?, sequencer: String?, region: String?, payload: [String: JSONValue],
        occurred: Instant, received: Instant, webhook: Resource?, fallbackIdentity: String
    ) -> Event {
        var labels = [Resource.idLabel: "aws.s3.bucket.\(bucket)", "prefect.resource.name": bucket, "aws.s3.bucket": bucket, "aws.s3.key": key]
        if let size = size?.textValue { labels["aws.s3.size"] = size }
        if let etag { labels["aws.s3.etag"] = etag }
        if let region { labels["aws.region"] = region }
        var related = [Resource([Resource.idLabel: "aws.s3.object.\(bucket)/\(key)", Resource.roleLabel: "object"])]
        if let webhook { related.append(webhook) }
        // The same object event arriving twice (or through two routes) gets the same id.
        let identity = sequencer.map { "s3:\(bucket)/\(key)@\($0):\(name)" } ?? "s3:\(fallbackIdentity)"
        return Event(
            id: UUID(name: identity), occurred: occurred, event: "aws.s3.\(name)", resource: Resource(labels), related: related, payload: payload,
            received: received)
    }
}
