public import Foundation

extension Event {
    /// Decodes and validates an event from JSON text.
    /// - Throws: A ``TriplineError`` naming the offending field when the text is not a valid event.
    public static func decode(json data: Data, limits: Limits = Limits()) throws(TriplineError) -> Event {
        if data.count > limits.maximumEventSize {
            throw TriplineError(.limitExceeded, "event is \(data.count) bytes, more than the limit of \(limits.maximumEventSize)")
        }
        let value = try JSONValue.parse(data)
        return try decode(value, limits: limits)
    }

    /// Validates and converts a parsed JSON value into an event.
    /// - Throws: A ``TriplineError`` naming the offending field.
    public static func decode(_ value: JSONValue, limits: Limits = Limits()) throws(TriplineError) -> Event {
        guard case .object(let object) = value else {
            throw TriplineError(.invalidEvent, "an event must be a JSON object, not \(value.kindDescription)")
        }
        func required(_ field: String) throws(TriplineError) -> JSONValue {
            guard let value = object[field], value != .null else {
                throw TriplineError(.missingField, "is required", path: field)
            }
            return value
        }
        guard case .string(let idText) = try required("id"), let id = UUID(text: idText) else {
            throw TriplineError(.invalidValue, "must be a UUID, got \(object["id"]!.jsonText.prefix(80))", path: "id")
        }
        guard case .string(let occurredText) = try required("occurred"), let occurred = Instant(rfc3339: occurredText) else {
            throw TriplineError(
                .invalidValue, "must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z, got \(object["occurred"]!.jsonText.prefix(80))",
                path: "occurred")
        }
        guard case .string(let name) = try required("event"), !name.isEmpty else {
            throw TriplineError(.invalidValue, "must be a non-empty string", path: "event")
        }
        if name.utf8.count > limits.maximumEventNameLength {
            throw TriplineError(.limitExceeded, "is longer than \(limits.maximumEventNameLength) bytes", path: "event")
        }
        let resource = try decodeResource(try required("resource"), path: "resource", limits: limits, requireRole: false)
        var related: [Resource] = []
        if let relatedValue = object["related"], relatedValue != .null {
            guard case .array(let items) = relatedValue else {
                throw TriplineError(.invalidValue, "must be an array of resources, not \(relatedValue.kindDescription)", path: "related")
            }
            if items.count > limits.maximumRelatedResources {
                throw TriplineError(
                    .limitExceeded, "has \(items.count) related resources, more than the limit of \(limits.maximumRelatedResources)",
                    path: "related")
            }
            related.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                related.append(try decodeResource(item, path: "related[\(index)]", limits: limits, requireRole: true))
            }
        }
        var payload: [String: JSONValue] = [:]
        if let payloadValue = object["payload"], payloadValue != .null {
            guard case .object(let payloadObject) = payloadValue else {
                throw TriplineError(.invalidValue, "must be a JSON object, not \(payloadValue.kindDescription)", path: "payload")
            }
            payload = payloadObject
        }
        var follows: EventID?
        if let followsValue = object["follows"], followsValue != .null {
            guard case .string(let text) = followsValue, let leader = UUID(text: text) else {
                throw TriplineError(.invalidValue, "must be a UUID or null", path: "follows")
            }
            follows = leader
        }
        var received: Instant?
        if let receivedValue = object["received"], receivedValue != .null {
            guard case .string(let text) = receivedValue, let instant = Instant(rfc3339: text) else {
                throw TriplineError(.invalidValue, "must be an RFC 3339 timestamp", path: "received")
            }
            received = instant
        }
        return Event(
            id: id, occurred: occurred, event: name, resource: resource, related: related, payload: payload, follows: follows,
            received: received)
    }

    private static func decodeResource(_ value: JSONValue, path: String, limits: Limits, requireRole: Bool) throws(TriplineError)
        -> Resource
    {
        guard case .object(let object) = value else {
            throw TriplineError(.invalidValue, "must be an object of string labels, not \(value.kindDescription)", path: path)
        }
        if object.count > limits.maximumLabelsPerResource {
            throw TriplineError(
                .limitExceeded, "has \(object.count) labels, more than the limit of \(limits.maximumLabelsPerResource)", path: path)
        }
        var labels: [String: String] = [:]
        labels.reserveCapacity(object.count)
        for (key, labelValue) in object {
            guard case .string(let text) = labelValue else {
                throw TriplineError(
                    .invalidValue, "label values must be strings, got \(labelValue.kindDescription)", path: "\(path)[\"\(key)\"]")
            }
            labels[key] = text
        }
        guard let id = labels[Resource.idLabel], !id.isEmpty else {
            throw TriplineError(.missingField, "a resource needs a non-empty \"prefect.resource.id\" label", path: path)
        }
        if requireRole, (labels[Resource.roleLabel] ?? "").isEmpty {
            throw TriplineError(.missingField, "a related resource needs a non-empty \"prefect.resource.role\" label", path: path)
        }
        return Resource(labels)
    }

    /// Checks an event built in code (by a webhook preset or a source) against the limits that decoding enforces.
    /// - Throws: A ``TriplineError`` naming the field.
    public func checkLimits(_ limits: Limits) throws(TriplineError) {
        if event.isEmpty { throw TriplineError(.invalidValue, "must be a non-empty string", path: "event") }
        if event.utf8.count > limits.maximumEventNameLength {
            throw TriplineError(.limitExceeded, "is longer than \(limits.maximumEventNameLength) bytes", path: "event")
        }
        if resource.id.isEmpty { throw TriplineError(.missingField, "is required", path: "resource[\"prefect.resource.id\"]") }
        if resource.labels.count > limits.maximumLabelsPerResource {
            throw TriplineError(.limitExceeded, "has more than \(limits.maximumLabelsPerResource) labels", path: "resource")
        }
        if related.count > limits.maximumRelatedResources {
            throw TriplineError(.limitExceeded, "has more than \(limits.maximumRelatedResources) related resources", path: "related")
        }
        for (index, item) in related.enumerated() where item.labels.count > limits.maximumLabelsPerResource {
            throw TriplineError(.limitExceeded, "has more than \(limits.maximumLabelsPerResource) labels", path: "related[\(index)]")
        }
    }

    /// The event as stored: its JSON without `received`, which the store keeps in its own column (so that the text
    /// can be prepared before the commit that decides the time). A payload kept as text is copied, not re-encoded.
    public var storageText: String {
        var output: [UInt8] = []
        output.reserveCapacity(256 + (rawPayload?.bytes.count ?? 0))
        writeJSON(to: &output, includeReceived: false)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends the event's JSON in Prefect's wire format (keys in a fixed order, not sorted; a raw payload copied as is).
    public func writeJSON(to output: inout [UInt8], includeReceived: Bool = true) {
        func labels(_ resource: Resource) {
            output.append(UInt8(ascii: "{"))
            var first = true
            for (key, value) in resource.labels {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                JSONValue.writeString(key, to: &output)
                output.append(UInt8(ascii: ":"))
                JSONValue.writeString(value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(contentsOf: #"{"id":""#.utf8)
        output.append(contentsOf: id.lowercasedText.utf8)
        output.append(contentsOf: #"","occurred":""#.utf8)
        output.append(contentsOf: occurred.rfc3339.utf8)
        output.append(contentsOf: #"","event":"#.utf8)
        JSONValue.writeString(event, to: &output)
        output.append(contentsOf: #","resource":"#.utf8)
        labels(resource)
        output.append(contentsOf: #","related":["#.utf8)
        for (index, item) in related.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            labels(item)
        }
        output.append(contentsOf: #"],"payload":"#.utf8)
        switch payloadStorage {
        case .raw(let raw): output.append(contentsOf: raw.bytes)
        case .value(let value): JSONValue.object(value).write(to: &output, sortedKeys: false)
        }
        output.append(contentsOf: #","follows":"#.utf8)
        if let follows {
            output.append(UInt8(ascii: "\""))
            output.append(contentsOf: follows.lowercasedText.utf8)
            output.append(UInt8(ascii: "\""))
        } else {
            output.append(contentsOf: "null".utf8)
        }
        if includeReceived, let received {
            output.append(contentsOf: #","received":""#.utf8)
            output.append(contentsOf: received.rfc3339.utf8)
            output.append(UInt8(ascii: "\""))
        }
        output.append(UInt8(ascii: "}"))
    }

    /// The event as a JSON value in Prefect's wire format.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id.lowercasedText),
            "occurred": .string(occurred.rfc3339),
            "event": .string(event),
            "resource": .object(resource.labels.mapValues(JSONValue.string)),
            "related": .array(related.map { .object($0.labels.mapValues(JSONValue.string)) }),
            "payload": .object(payload),
        ]
        object["follows"] = follows.map { .string($0.lowercasedText) } ?? .null
        if let received { object["received"] = .string(received.rfc3339) }
        return .object(object)
    }
}
