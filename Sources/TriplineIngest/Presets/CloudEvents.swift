internal import Foundation
public import TriplineCore

/// CloudEvents 1.0 over HTTP: structured (`application/cloudevents+json`), batched
/// (`application/cloudevents-batch+json`) and binary (`ce-*` headers) modes.
public enum CloudEvents {
    static let contextAttributes: Set<String> = ["specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"]

    /// Checks a CloudEvent's attributes (a structured-mode JSON object) against the specification.
    /// - Throws: A ``WebhookRejection`` (400) naming the attribute.
    public static func validate(_ event: [String: JSONValue]) throws(WebhookRejection) {
        func requiredString(_ name: String) throws(WebhookRejection) -> String {
            guard let value = event[name], value != .null else { throw .malformed("CloudEvent attribute `\(name)` is required") }
            guard case .string(let text) = value else { throw .malformed("CloudEvent attribute `\(name)` must be a string") }
            guard !text.isEmpty else { throw .malformed("CloudEvent attribute `\(name)` may not be empty") }
            return text
        }
        let version = try requiredString("specversion")
        guard version == "1.0" else { throw .malformed("CloudEvents specversion \(version) is not supported (1.0 is)") }
        _ = try requiredString("id")
        _ = try requiredString("source")
        _ = try requiredString("type")
        for name in ["datacontenttype", "dataschema", "subject", "time"] {
            guard let value = event[name], value != .null else { continue }
            guard case .string(let text) = value, !text.isEmpty else { throw .malformed("CloudEvent attribute `\(name)` must be a non-empty string") }
            if name == "time", !isRFC3339(text) { throw .malformed("CloudEvent attribute `time` is not an RFC 3339 timestamp") }
            if name == "datacontenttype", !MediaType.isValid(text) { throw .malformed("CloudEvent attribute `datacontenttype` is not a media type") }
        }
        for (name, value) in event where !contextAttributes.contains(name) && name != "data" && name != "data_base64" {
            guard isValidExtensionName(name) else {
                throw .malformed("CloudEvent extension `\(name.prefix(40))` is not a valid attribute name (lowercase letters and digits)")
            }
            switch value {
            case .null, .string, .bool: continue
            case .int(let number) where number >= Int64(Int32.min) && number <= Int64(Int32.max): continue
            default: throw .malformed("CloudEvent extension `\(name)` must be a string, boolean or 32-bit integer")
            }
        }
        if event["data"] != nil, event["data_base64"] != nil { throw .malformed("a CloudEvent has either `data` or `data_base64`, not both") }
    }

    /// A validated CloudEvent (structured form) as an event: its `type` names it, its `source` is the resource (with
    /// `subject` and extensions as labels), `data` and the other attributes are the payload. The id derives from
    /// (`source`, `id`), so the same CloudEvent is one event whether it arrives by webhook or by Kafka.
    public static func event(_ document: [String: JSONValue], received: Instant, related: [Resource]) -> Event {
        let source = document["source"]?.stringValue ?? ""
        let id = document["id"]?.stringValue ?? ""
        let type = document["type"]?.stringValue ?? ""
        var labels = [Resource.idLabel: source, "cloudevents.source": source]
        var payload: [String: JSONValue] = ["id": .string(id), "specversion": document["specversion"] ?? .null]
        var extensions: [String: JSONValue] = [:]
        for (name, value) in document where value != .null {
            switch name {
            case "specversion", "id", "source", "type": continue
            case "data": payload["data"] = value
            case "data_base64": payload["data_base64"] = value
            case "subject":
                labels["cloudevents.subject"] = value.stringValue
                payload["subject"] = value
            case "datacontenttype", "dataschema", "time": payload[name] = value
            default:
                extensions[name] = value
                if let text = value.textValue { labels["cloudevents.\(name)"] = text }
            }
        }
        if !extensions.isEmpty { payload["extensions"] = .object(extensions) }
        let occurred = document["time"]?.stringValue.flatMap { Instant(rfc3339: $0) } ?? received
        return Event(
            id: UUID(name: "cloudevents:\(source)\u{1F}\(id)"), occurred: occurred, event: type, resource: Resource(labels), related: related,
            payload: payload, received: received)
    }

    static func isValidExtensionName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 50
            && name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
    }

    /// RFC 3339 `date-time`: full date, `T`, full time with seconds, optional fraction, `Z` or `±hh:mm`.
    static func isRFC3339(_ text: String) -> Bool {
        let b = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.upperBound <= b.count && b[range].allSatisfy { $0 >= 48 && $0 <= 57 } }
        guard b.count >= 20, digits(0..<4), b[4] == UInt8(ascii: "-"), digits(5..<7), b[7] == UInt8(ascii: "-"), digits(8..<10),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"), digits(11..<13), b[13] == UInt8(ascii: ":"), digits(14..<16), b[16] == UInt8(ascii: ":"),
            digits(17..<19)
        else { return false }
        var index = 19
        if b[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < b.count, b[index] >= 48, b[index] <= 57 { index += 1 }
            if index == start { return false }
        }
        guard index < b.count else { return false }
        if b[index] == UInt8(ascii: "Z") || b[index] == UInt8(ascii: "z") { return index + 1 == b.count && Instant(rfc3339: text) != nil }
        guard b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-"), index + 6 == b.count, digits(index + 1..<index + 3),
            b[index + 3] == UInt8(ascii: ":"), digits(index + 4..<index + 6)
        else { return false }
        return true
    }

    /// A structured-mode event from a binary-mode request: `ce-*` headers (percent-decoded) and the body as data.
    static func fromBinary(_ request: WebhookRequest) -> [String: JSONValue] {
        var event: [String: JSONValue] = [:]
        for (name, value) in request.headers {
            let lowered = name.lowercased()
            guard lowered.hasPrefix("ce-"), lowered.count > 3 else { continue }
            event[String(lowered.dropFirst(3))] = .string(percentDecoded(value))
        }
        if let contentType = request.headers["content-type"] { event["datacontenttype"] = .string(contentType) }
        if !request.body.isEmpty { event["data"] = data(request.body, contentType: request.headers["content-type"]) }
        return event
    }

    /// The body as data: parsed JSON for JSON media types, text for text, base64 otherwise.
    static func data(_ body: [UInt8], contentType: String?) -> JSONValue {
        let essence = contentType.map(MediaType.essence) ?? "application/json"
        if MediaType.isJSON(essence), let value = try? body.withUnsafeBufferPointer({ buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) }) {
            return value
        }
        if let text = String(validating: body, as: UTF8.self), essence.hasPrefix("text/") || essence.hasSuffix("xml") || MediaType.isJSON(essence) {
            return .string(text)
        }
        return .object(["base64": .string(Data(body).base64EncodedString())])
    }

    static func percentDecoded(_ value: String) -> String {
        guard value.contains("%") else { return value }
        return value.removingPercentEncoding ?? value
    }
}

extension WebhookProcessor {
    /// CloudEvents: the event's `type` as the event name, on the resource named by its `source`; `subject` and
    /// extensions as labels; `data` in the payload. The event id derives from (source, id).
    func cloudEvents(_ request: WebhookRequest) throws(WebhookRejection) -> WebhookResult {
        let mediaType = request.mediaType
        var documents: [[String: JSONValue]] = []
        if mediaType == "application/cloudevents+json" {
            documents = [try Self.jsonObject(request.body)]
        } else if mediaType == "application/cloudevents-batch+json" {
            guard case .array(let items) = try Self.json(request.body) else { throw .malformed("a CloudEvents batch must be a JSON array") }
            for (index, item) in items.enumerated() {
                guard case .object(let object) = item else { throw .malformed("batch[\(index)] must be a JSON object") }
                documents.append(object)
            }
        } else if request.headers["ce-specversion"] != nil {
            documents = [CloudEvents.fromBinary(request)]
        } else {
            throw .unsupportedMediaType(
                "not a CloudEvent: send application/cloudevents+json (structured), application/cloudevents-batch+json, or ce-* headers (binary)")
        }
        var events: [Event] = []
        for (index, document) in documents.enumerated() {
            do {
                try CloudEvents.validate(document)
            } catch {
                throw documents.count > 1 ? .malformed("batch[\(index)]: \(error.reason)") : error
            }
            events.append(cloudEvent(document, received: request.received))
        }
        return WebhookResult(events: events, status: events.isEmpty ? 204 : 200, note: events.count == 1 ? events[0].event : "\(events.count) CloudEvents")
    }

    func cloudEvent(_ document: [String: JSONValue], received: Instant) -> Event {
        CloudEvents.event(document, received: received, related: [webhookResource])
    }
}
