public import Foundation
public import TriplineCore
public import TriplineKafka

/// Why a Kafka record produced no events.
public struct KafkaRejection: Error, Sendable, Hashable {
    /// A short fixed word for metrics: `empty`, `too_large`, `invalid_json`, `invalid_event`, `invalid_cloudevent`,
    /// `not_s3`.
    public var reason: String
    /// What is wrong, for the rejected-record event and the log.
    public var detail: String

    /// Creates a rejection.
    public init(_ reason: String, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}

/// Turns Kafka records into events, by the source's format. Never traps: anything it cannot read becomes a
/// ``KafkaRejection``.
public struct KafkaRecordDecoder: Sendable {
    /// The source's name.
    public var sourceName: String
    /// The format.
    public var format: KafkaSource.Format
    /// Prefect's limits on an event.
    public var limits = Event.Limits()
    /// For format `raw`: the mapping and the template renderer.
    public var mapping: KafkaSource.RawMapping?
    /// Renders the mapping's templates.
    public var renderer: (any TemplateRenderer)?

    /// Creates a decoder.
    public init(sourceName: String, format: KafkaSource.Format, mapping: KafkaSource.RawMapping? = nil, renderer: (any TemplateRenderer)? = nil) {
        self.sourceName = sourceName
        self.format = format
        self.mapping = mapping
        self.renderer = renderer
    }

    /// The id of an event derived from a record's position, for records that carry none: the same record always gets
    /// the same id, so that a record read twice (after a crash or a rebalance) is stored once.
    public static func eventID(topic: String, partition: KafkaPartition, offset: Int64) -> UUID {
        UUID(name: "kafka:\(topic):\(partition.rawValue):\(offset)")
    }

    /// The related resource naming the source.
    var sourceResource: Resource {
        Resource([Resource.idLabel: "tripline.kafka-source.\(sourceName)", Resource.roleLabel: "kafka-source", Resource.nameLabel: sourceName])
    }

    /// The events of one record.
    /// - Parameter received: When the record was read.
    public func events(from record: KafkaConsumerMessage, received: Instant) -> Result<[Event], KafkaRejection> {
        do throws(KafkaRejection) {
            guard let value = record.value, !value.isEmpty else {
                // A tombstone or empty value carries no event: for a binary CloudEvent it still may (data is optional).
                if format == .cloudEvents, record.header("ce_specversion") != nil { return .success([try cloudEvent(record, received: received)]) }
                throw KafkaRejection("empty", record.value == nil ? "the record is a tombstone (no value)" : "the record's value is empty")
            }
            if value.count > limits.maximumEventSize {
                throw KafkaRejection("too_large", "the value is \(value.count) bytes, more than the limit of \(limits.maximumEventSize)")
            }
            switch format {
            case .prefectEvent: return .success([try prefectEvent(record, value: value, received: received)])
            case .cloudEvents: return .success(try cloudEvents(record, value: value, received: received))
            case .awsS3: return .success(try s3Events(record, value: value, received: received))
            case .raw: return .success([try rawEvent(record, value: value, received: received)])
            }
        } catch {
            return .failure(error)
        }
    }

    static func parse(_ value: [UInt8]) throws(KafkaRejection) -> JSONValue {
        do {
            return try value.withUnsafeBufferPointer { buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) }
        } catch {
            throw KafkaRejection("invalid_json", "the value is not valid JSON: \(error.reason)")
        }
    }

    // MARK: - prefect-event

    func prefectEvent(_ record: KafkaConsumerMessage, value: [UInt8], received: Instant) throws(KafkaRejection) -> Event {
        guard case .object(var object) = try Self.parse(value) else { throw KafkaRejection("invalid_event", "an event must be a JSON object") }
        if object["id"] == nil || object["id"] == .null {
            object["id"] = .string(Self.eventID(topic: record.topic, partition: record.partition, offset: record.offset).lowercasedText)
        }
        if object["occurred"] == nil || object["occurred"] == .null {
            let time = record.timestamp.map { Instant(seconds: $0.timeIntervalSince1970) } ?? received
            object["occurred"] = .string(time.rfc3339)
        }
        do {
            return try Event.decode(.object(object), limits: limits)
        } catch {
            throw KafkaRejection("invalid_event", error.message)
        }
    }

    // MARK: - cloudevents

    func cloudEvents(_ record: KafkaConsumerMessage, value: [UInt8], received: Instant) throws(KafkaRejection) -> [Event] {
        // Kafka protocol binding: binary mode carries the attributes in ce_ headers; structured mode has a content
        // type of application/cloudevents+json (or just a JSON object with specversion).
        if record.header("ce_specversion") != nil { return [try cloudEvent(record, received: received)] }
        guard case .object(let document) = try Self.parse(value) else {
            throw KafkaRejection("invalid_cloudevent", "a structured CloudEvent must be a JSON object")
        }
        return [try mapCloudEvent(document, received: received)]
    }

    /// A binary-mode CloudEvent: attributes from `ce_` headers, data from the value.
    func cloudEvent(_ record: KafkaConsumerMessage, received: Instant) throws(KafkaRejection) -> Event {
        var document: [String: JSONValue] = [:]
        for header in record.headers {
            let name = header.key.lowercased()
            guard name.hasPrefix("ce_"), name.count > 3, let bytes = header.value else { continue }
            document[String(name.dropFirst(3))] = .string(String(decoding: bytes, as: UTF8.self))
        }
        let contentType = record.header("content-type")?.value.map { String(decoding: $0, as: UTF8.self) }
        if let contentType { document["datacontenttype"] = .string(contentType) }
        if let value = record.value, !value.isEmpty { document["data"] = CloudEvents.data(value, contentType: contentType) }
        return try mapCloudEvent(document, received: received)
    }

    func mapCloudEvent(_ document: [String: JSONValue], received: Instant) throws(KafkaRejection) -> Event {
        do {
            try CloudEvents.validate(document)
        } catch {
            throw KafkaRejection("invalid_cloudevent", error.reason)
        }
        // The same id as a CloudEvent delivered by webhook: one event however it arrives.
        return CloudEvents.event(document, received: received, related: [sourceResource])
    }

    // MARK: - raw

    /// The context the mapping's templates see.
    static func templateContext(_ record: KafkaConsumerMessage, value: [UInt8]) -> JSONValue {
        let text = String(validating: value, as: UTF8.self) ?? "base64:" + Data(value).base64EncodedString()
        let parsed = (try? value.withUnsafeBufferPointer { buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) }) ?? .string(text)
        var headers: [String: JSONValue] = [:]
        for header in record.headers where headers[header.key] == nil {
            headers[header.key] = header.value.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null
        }
        return .object([
            "value": parsed, "text": .string(text), "key": record.key.map { .string(String(decoding: $0, as: UTF8.self)) } ?? .null,
            "headers": .object(headers), "topic": .string(record.topic), "partition": .int(Int64(record.partition.rawValue)),
            "offset": .int(record.offset), "timestamp": record.timestamp.map { .string(Instant(seconds: $0.timeIntervalSince1970).rfc3339) } ?? .null,
        ])
    }

    func rawEvent(_ record: KafkaConsumerMessage, value: [UInt8], received: Instant) throws(KafkaRejection) -> Event {
        guard let mapping, let renderer else { throw KafkaRejection("unsupported_format", "format raw needs a mapping and a template renderer") }
        let context = Self.templateContext(record, value: value)
        func render(_ template: String, _ field: String) throws(KafkaRejection) -> String {
            do {
                return try renderer.render(template, context: context).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw KafkaRejection("template", "mapping.\(field): \(error.message)")
            }
        }
        let name = try render(mapping.event, "event")
        guard !name.isEmpty else { throw KafkaRejection("invalid_event", "mapping.event rendered an empty event name") }
        var labels: [String: String] = [:]
        for (label, template) in mapping.resource { labels[label] = try render(template, "resource.\(label)") }
        guard let id = labels[Resource.idLabel], !id.isEmpty else {
            throw KafkaRejection("invalid_event", "mapping.resource rendered an empty prefect.resource.id")
        }
        var eventID = Self.eventID(topic: record.topic, partition: record.partition, offset: record.offset)
        if let template = mapping.id {
            let text = try render(template, "id")
            if !text.isEmpty { eventID = UUID(text: text) ?? UUID(name: "kafka-raw:\(text)") }
        }
        var occurred = record.timestamp.map { Instant(seconds: $0.timeIntervalSince1970) } ?? received
        if let template = mapping.occurred {
            let text = try render(template, "occurred")
            guard let instant = Instant(rfc3339: text) else { throw KafkaRejection("invalid_event", "mapping.occurred rendered \"\(text.prefix(60))\", not an RFC 3339 time") }
            occurred = instant
        }
        var payload: [String: JSONValue] = ["value": context[path: "value"] ?? .null]
        if let key = context[path: "key"], key != .null { payload["key"] = key }
        return Event(
            id: eventID, occurred: occurred, event: name, resource: Resource(labels), related: [sourceResource], payload: payload, received: received)
    }

    // MARK: - aws-s3

    func s3Events(_ record: KafkaConsumerMessage, value: [UInt8], received: Instant) throws(KafkaRejection) -> [Event] {
        guard case .object(var document) = try Self.parse(value) else { throw KafkaRejection("not_s3", "an S3 notification must be a JSON object") }
        // An SNS envelope around a notification.
        if document["Type"]?.stringValue == "Notification", case .string(let message)? = document["Message"],
            case .object(let inner)? = try? JSONValue.parse(message)
        {
            document = inner
        }
        // A single SQS message body as some bridges write it: {"body": "<notification>"}.
        if document["Records"] == nil, case .string(let body)? = document["body"], case .object(let inner)? = try? JSONValue.parse(body) {
            document = inner
        }
        guard let found = S3Notifications.events(from: document, received: received, webhook: sourceResource) else {
            throw KafkaRejection("not_s3", "the value is not an S3 event notification (Records, SQS, SNS or EventBridge)")
        }
        return found.events
    }
}
