public import Foundation
public import TriplineCore

/// An endpoint's own mapping: a template (Jinja-like) that renders a request into one event or a JSON list of
/// events, replacing the preset's mapping. The preset still verifies the request.
public struct WebhookTemplate: Sendable {
    /// The template text.
    public var text: String
    /// Where it is declared (the `template` field).
    public var source: SourceLocation?

    /// Creates a template.
    public init(text: String, source: SourceLocation? = nil) {
        self.text = text
        self.source = source
    }

    /// Headers that carry credentials or signatures; templates never see them.
    static let hiddenHeaders: Set<String> = [
        "authorization", "cookie", "proxy-authorization", "x-hub-signature", "x-hub-signature-256", "stripe-signature", "x-slack-signature",
    ]

    /// What a template can use: `method`, `path`, `slug`, `headers` (lowercase names, credentials and signatures
    /// removed), `query`, `body` (parsed JSON, form fields as an object, or text) and `received`.
    public static func context(_ request: WebhookRequest, endpoint: WebhookEndpoint, body: JSONValue) -> JSONValue {
        var headers: [String: JSONValue] = [:]
        var hidden = hiddenHeaders
        if let scheme = endpoint.signature {
            hidden.insert(scheme.header.lowercased())
        }
        for (name, value) in request.headers {
            let lowered = name.lowercased()
            guard !hidden.contains(lowered), !lowered.contains("signature"), !lowered.contains("token") else { continue }
            headers[lowered] = .string(value)
        }
        var query: [String: JSONValue] = [:]
        for (name, value) in request.query { query[name] = .string(value) }
        return .object([
            "method": .string(request.method), "path": .string(request.path), "slug": .string(request.slug), "headers": .object(headers),
            "query": .object(query), "body": body, "received": .string(request.received.rfc3339),
        ])
    }

    /// The body as a template sees it.
    public static func body(_ request: WebhookRequest) -> JSONValue {
        let mediaType = request.mediaType
        if request.body.isEmpty { return .null }
        if mediaType == "application/x-www-form-urlencoded" {
            var fields: [String: JSONValue] = [:]
            for (name, value) in FormDecoding.fields(request.body) { fields[name] = .string(value) }
            return .object(fields)
        }
        if mediaType == nil || MediaType.isJSON(mediaType!) || mediaType == "text/plain",
            let value = try? request.body.withUnsafeBufferPointer({ buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) })
        {
            return value
        }
        return .string(String(decoding: request.body, as: UTF8.self))
    }

    /// Renders the template for `request` into events. Events without an `id` get one derived from the endpoint and
    /// the rendered event (so that a redelivery maps to the same id); without `occurred`, the arrival time.
    /// - Throws: A ``WebhookRejection`` (422) saying why the template could not map this request.
    public func events(
        for request: WebhookRequest, endpoint: WebhookEndpoint, body: JSONValue, renderer: any TemplateRenderer, limits: Event.Limits = Event.Limits()
    ) throws(WebhookRejection) -> [Event] {
        let rendered: String
        do {
            rendered = try renderer.render(text, context: Self.context(request, endpoint: endpoint, body: body))
        } catch {
            throw WebhookRejection(422, "template_failed", "the endpoint's template could not map this request: \(error.reason)")
        }
        return try Self.events(fromRendered: rendered, endpoint: endpoint, received: request.received, limits: limits)
    }

    /// Reads rendered text as one event or a list of events.
    static func events(fromRendered rendered: String, endpoint: WebhookEndpoint, received: Instant, limits: Event.Limits) throws(WebhookRejection) -> [Event] {
        let value: JSONValue
        do {
            value = try JSONValue.parse(rendered)
        } catch {
            throw WebhookRejection(422, "template_failed", "the endpoint's template did not render JSON: \(error.reason)")
        }
        let items: [JSONValue]
        switch value {
        case .array(let list): items = list
        case .object: items = [value]
        default: throw WebhookRejection(422, "template_failed", "the endpoint's template must render an event object or a list of them")
        }
        var events: [Event] = []
        for (index, item) in items.enumerated() {
            guard case .object(var object) = item else {
                throw WebhookRejection(422, "template_failed", "the template's event \(index) is not an object")
            }
            if object["id"] == nil || object["id"] == .null {
                object["id"] = .string(UUID(name: "webhook-template:\(endpoint.slug):\(JSONValue.object(object).jsonText)").lowercasedText)
            }
            if object["occurred"] == nil || object["occurred"] == .null { object["occurred"] = .string(received.rfc3339) }
            do {
                var event = try Event.decode(.object(object), limits: limits)
                event.received = received
                events.append(event)
            } catch {
                let path = error.path.isEmpty ? "" : "\(error.path): "
                throw WebhookRejection(422, "template_failed", "the template's event \(index) is not a valid event: \(path)\(error.reason)")
            }
        }
        return events
    }

    /// Checks the template against a sample body at validation time.
    /// - Returns: The events the sample maps to.
    /// - Throws: A ``TriplineError`` located at the template.
    public func check(sample: [UInt8], contentType: String, endpoint: WebhookEndpoint, renderer: any TemplateRenderer) throws(TriplineError) -> [Event] {
        let request = WebhookRequest(
            method: "POST", slug: endpoint.slug, headers: WebhookHeaders([("Content-Type", contentType)]), body: sample, received: Instant(seconds: 1_700_000_000))
        do {
            return try events(for: request, endpoint: endpoint, body: Self.body(request), renderer: renderer)
        } catch {
            throw TriplineError(.invalidValue, "with the sample: \(error.reason)", path: "template", location: source)
        }
    }
}
