internal import Foundation
public import TriplineCore

/// A signature scheme from configuration (``HMACScheme``): header, algorithm, encoding, prefix, optional signed
/// timestamp and the layout of the signed string.
public enum GenericSignature {
    /// Verifies `request` with `scheme` against any of `secrets`.
    /// - Throws: A ``WebhookRejection`` (401) saying which check failed.
    public static func verify(_ request: WebhookRequest, scheme: HMACScheme, secrets: [Secret], tolerance: TimeSpan) throws(WebhookRejection) {
        guard let header = request.headers[scheme.header], !header.isEmpty else {
            throw .unauthorized("missing_signature", "the \(scheme.header) header is missing")
        }
        var timestamp = ""
        if let timestampHeader = scheme.timestampHeader {
            guard let value = request.headers[timestampHeader] else { throw .unauthorized("missing_signature", "the \(timestampHeader) header is missing") }
            guard let instant = parseTimestamp(value) else { throw .unauthorized("bad_signature", "\(timestampHeader) is not a timestamp") }
            if abs((request.received - instant).microseconds) > tolerance.microseconds {
                throw .unauthorized("stale_timestamp", "the signed timestamp is outside the tolerance of \(tolerance.microseconds / 1_000_000) s")
            }
            timestamp = value
        }
        let separators: Set<Character> = scheme.prefix.contains(",") ? [" "] : [" ", ","]
        let provided: [[UInt8]] = header.split(whereSeparator: { separators.contains($0) }).compactMap { item in
            var text = Substring(item)
            if !scheme.prefix.isEmpty {
                guard text.lowercased().hasPrefix(scheme.prefix.lowercased()) else { return nil }
                text = text.dropFirst(scheme.prefix.count)
            }
            return scheme.encoding.decode(text)
        }
        guard !provided.isEmpty else { throw .unauthorized("bad_signature", "\(scheme.header) does not hold a \(scheme.prefix)<\(scheme.encoding.rawValue)> signature") }
        let message = signedBytes(request, layout: scheme.signedPayload, timestamp: timestamp)
        for secret in secrets {
            let expected = scheme.algorithm.hmac(key: secret.bytes, message: message)
            for candidate in provided where ConstantTime.equals(expected, candidate) { return }
        }
        throw .unauthorized("bad_signature", "the signature does not match the body")
    }

    /// The bytes a layout describes: `{body}`, `{timestamp}`, `{method}`, `{path}`, `{header:Name}`, and text.
    static func signedBytes(_ request: WebhookRequest, layout: String, timestamp: String) -> [UInt8] {
        var out: [UInt8] = []
        var rest = Substring(layout)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += Array(rest[..<open].utf8)
            let name = rest[rest.index(after: open)..<close]
            switch name {
            case "body": out += request.body
            case "timestamp": out += Array(timestamp.utf8)
            case "method": out += Array(request.method.utf8)
            case "path": out += Array(request.path.utf8)
            default:
                if name.hasPrefix("header:") {
                    out += Array((request.headers[String(name.dropFirst(7))] ?? "").utf8)
                } else {
                    out += Array(rest[open...close].utf8)
                }
            }
            rest = rest[rest.index(after: close)...]
        }
        out += Array(rest.utf8)
        return out
    }

    /// Unix seconds, Unix milliseconds, or RFC 3339.
    static func parseTimestamp(_ text: String) -> Instant? {
        let trimmed = text.trimmingCharacters(in: " ")
        if let number = Int64(trimmed) {
            // Seconds, or milliseconds when larger than any plausible number of seconds; anything beyond is refused.
            guard (-100_000_000_000_000...100_000_000_000_000).contains(number) else { return nil }
            if !(-100_000_000_000...100_000_000_000).contains(number) { return Instant(microseconds: number * 1_000) }
            return Instant(microseconds: number * 1_000_000)
        }
        return Instant(rfc3339: trimmed)
    }
}

extension WebhookProcessor {
    /// Any sender: the event is named by the endpoint (`webhook.<slug>` by default), on `webhook.<slug>`, with the
    /// body as payload (JSON object as is; other JSON under `body`; form fields as an object; text under `text`).
    func generic(_ request: WebhookRequest) throws(WebhookRejection) -> WebhookResult {
        var payload: [String: JSONValue]
        let mediaType = request.mediaType
        if request.body.isEmpty {
            payload = [:]
        } else if mediaType == nil || MediaType.isJSON(mediaType!) {
            let value = try Self.json(request.body)
            if case .object(let object) = value { payload = object } else { payload = ["body": value] }
        } else if mediaType == "application/x-www-form-urlencoded" {
            payload = [:]
            for (name, value) in FormDecoding.fields(request.body) { payload[name] = .string(value) }
        } else if let text = String(validating: request.body, as: UTF8.self), mediaType!.hasPrefix("text/") || mediaType!.hasSuffix("xml") {
            payload = ["text": .string(text)]
        } else {
            throw .unsupportedMediaType("the generic preset reads JSON, form or text bodies, not \(mediaType!)")
        }
        let name = endpoint.eventName ?? "webhook.\(endpoint.slug)"
        let deliveryID = endpoint.idHeader.flatMap { request.headers[$0] }
        let id = deliveryID.map { UUID.eventID(from: $0, prefix: "webhook:\(endpoint.slug)") } ?? UUID()
        let event = Event(
            id: id, occurred: request.received, event: name,
            resource: Resource([Resource.idLabel: "webhook.\(endpoint.slug)", "prefect.resource.name": endpoint.name]), related: [webhookResource],
            payload: payload, received: request.received)
        return WebhookResult(events: [event], note: name)
    }
}
