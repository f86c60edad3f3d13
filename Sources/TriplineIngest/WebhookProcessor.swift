public import Foundation
public import TriplineCore

/// An endpoint with its secrets read: what the server keeps per slug.
public struct ResolvedWebhookEndpoint: Sendable {
    /// The declaration.
    public let endpoint: WebhookEndpoint
    /// The signing secrets (any of them verifies a request).
    let secrets: [Secret]
    /// The credentials of `auth` (any of them is accepted); empty without `auth`.
    let credentials: [Secret]

    /// Reads the endpoint's secrets.
    /// - Throws: A ``TriplineError`` naming the reference that cannot be read (never a value).
    public init(_ endpoint: WebhookEndpoint, environment: [String: String] = ProcessInfo.processInfo.environment) throws(TriplineError) {
        self.endpoint = endpoint
        var secrets: [Secret] = []
        for reference in endpoint.secrets { secrets.append(try reference.resolve(environment: environment)) }
        self.secrets = secrets
        var credentials: [Secret] = []
        for reference in endpoint.authentication?.references ?? [] { credentials.append(try reference.resolve(environment: environment)) }
        self.credentials = credentials
    }

    /// An endpoint with secrets given directly (tests and benchmarks).
    public init(_ endpoint: WebhookEndpoint, secrets: [Secret], credentials: [Secret] = []) {
        self.endpoint = endpoint
        self.secrets = secrets
        self.credentials = credentials
    }
}

/// Turns requests to one webhook endpoint into events: authenticates them (signature, credential or SNS
/// certificate), reads the body, and maps it with the endpoint's preset.
public struct WebhookProcessor: Sendable {
    /// The endpoint.
    public let resolved: ResolvedWebhookEndpoint
    /// Fetches and caches SNS signing certificates, and confirms SNS subscriptions.
    public let aws: AWSMessageVerifier
    /// Renders the endpoint's template, when it has one.
    public let renderer: (any TemplateRenderer)?

    /// Creates a processor.
    public init(endpoint: ResolvedWebhookEndpoint, aws: AWSMessageVerifier, renderer: (any TemplateRenderer)? = nil) {
        self.resolved = endpoint
        self.aws = aws
        self.renderer = renderer
    }

    var endpoint: WebhookEndpoint { resolved.endpoint }

    /// Processes one request.
    /// - Returns: The events to store and the answer to give once they are durable.
    /// - Throws: A ``WebhookRejection`` with the status and a reason safe to return to the sender.
    public func process(_ request: WebhookRequest) async throws(WebhookRejection) -> WebhookResult {
        switch request.method {
        case "GET", "HEAD":
            // Providers that check an endpoint exists before sending anything.
            return .acknowledged("ping (\(request.method))")
        case "POST", "PUT":
            break
        default:
            throw WebhookRejection(405, "method_not_allowed", "webhooks accept POST or PUT (and GET/HEAD pings), not \(request.method)")
        }
        if let template = endpoint.template {
            guard let renderer else { throw WebhookRejection(503, "not_configured", "the endpoint's template cannot be rendered") }
            return try await templated(request, template: template, renderer: renderer)
        }
        switch endpoint.preset {
        case .github: return try github(request)
        case .stripe: return try stripe(request)
        case .slack: return try slack(request)
        case .awsSNS: return try await snsMessage(request, s3Only: false)
        case .awsS3: return try await s3(request)
        case .cloudevents:
            try authenticateByConfiguration(request)
            return try cloudEvents(request)
        case .generic:
            try authenticateByConfiguration(request)
            return try generic(request)
        }
    }

    /// Verifies the request as the preset does, then maps it with the endpoint's template.
    func templated(_ request: WebhookRequest, template: WebhookTemplate, renderer: any TemplateRenderer) async throws(WebhookRejection) -> WebhookResult {
        switch endpoint.preset {
        case .github:
            try GitHubSignature.verify(headers: request.headers, body: request.body, secrets: resolved.secrets, allowSHA1: endpoint.allowSHA1)
        case .stripe:
            try StripeSignature.verify(
                header: request.headers["stripe-signature"], body: request.body, secrets: resolved.secrets, now: request.received, tolerance: endpoint.tolerance)
        case .slack:
            try SlackSignature.verify(headers: request.headers, body: request.body, secrets: resolved.secrets, now: request.received, tolerance: endpoint.tolerance)
        case .awsSNS, .awsS3:
            let body = try Self.jsonObject(request.body)
            if Self.isSNSEnvelope(body), !endpoint.topics.isEmpty {
                let message = try await verifiedSNSMessage(body)
                if let handled = try await handleSNSControlMessage(message) { return handled }
            } else {
                try authenticateByConfiguration(request)
            }
        case .cloudevents, .generic:
            try authenticateByConfiguration(request)
        }
        let body = WebhookTemplate.body(request)
        let events = try template.events(for: request, endpoint: endpoint, body: body, renderer: renderer)
        return WebhookResult(events: events, note: events.count == 1 ? "\(events[0].event) (template)" : "\(events.count) events (template)")
    }

    // MARK: - Shared steps

    /// Checks the endpoint's configured `signature`, `auth`, or `unauthenticated`.
    func authenticateByConfiguration(_ request: WebhookRequest) throws(WebhookRejection) {
        var checked = false
        if let scheme = endpoint.signature {
            try GenericSignature.verify(request, scheme: scheme, secrets: resolved.secrets, tolerance: endpoint.tolerance)
            checked = true
        }
        if let authentication = endpoint.authentication, !resolved.credentials.isEmpty {
            try Self.checkCredential(request.headers["authorization"], authentication: authentication, credentials: resolved.credentials)
            checked = true
        }
        if !checked, !endpoint.unauthenticated {
            throw .unauthorized("not_verifiable", "this endpoint accepts only verified requests")
        }
    }

    static func checkCredential(_ header: String?, authentication: RequestAuthentication, credentials: [Secret]) throws(WebhookRejection) {
        guard let header else { throw .unauthorized("missing_credentials", "the Authorization header is missing") }
        let presented: [UInt8]
        let prefix: [UInt8]
        switch authentication {
        case .bearer:
            guard header.lowercased().hasPrefix("bearer ") else { throw .unauthorized("bad_credentials", "expected a bearer token") }
            presented = Array(header.dropFirst(7).trimmingCharacters(in: " ").utf8)
            prefix = []
        case .basic(let username, _):
            guard header.lowercased().hasPrefix("basic "),
                let decoded = Data(base64Encoded: header.dropFirst(6).trimmingCharacters(in: " "))
            else { throw .unauthorized("bad_credentials", "expected basic credentials") }
            presented = [UInt8](decoded)
            prefix = Array("\(username):".utf8)
        }
        // Compare digests so that the comparison takes the same time whatever the lengths, and compare with every
        // credential so that the time does not tell which one matched.
        let digest = DigestAlgorithm.sha256.hash(presented)
        var matched = false
        for credential in credentials {
            if ConstantTime.equals(digest, DigestAlgorithm.sha256.hash(prefix + credential.bytes)) { matched = true }
        }
        guard matched else { throw .unauthorized("bad_credentials", "the credentials are not valid") }
    }

    /// The body as a JSON value.
    static func json(_ body: [UInt8], what: String = "the body") throws(WebhookRejection) -> JSONValue {
        guard !body.isEmpty else { throw .malformed("\(what) is empty") }
        do {
            return try body.withUnsafeBufferPointer { buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) }
        } catch {
            throw .malformed("\(what) is not valid JSON: \(error.reason)")
        }
    }

    /// The body as a JSON object.
    static func jsonObject(_ body: [UInt8], what: String = "the body") throws(WebhookRejection) -> [String: JSONValue] {
        let value = try json(body, what: what)
        guard case .object(let object) = value else { throw .malformed("\(what) must be a JSON object, not \(value.kindDescription)") }
        return object
    }

    /// The body as a JSON object kept as its text: checked completely, but only the members a mapping reads are parsed.
    static func rawObject(_ body: [UInt8], what: String = "the body") throws(WebhookRejection) -> RawJSONObject {
        guard !body.isEmpty else { throw .malformed("\(what) is empty") }
        do {
            return try RawJSONObject(validating: body)
        } catch where error.code == .invalidJSON {
            throw .malformed("\(what) is not valid JSON: \(error.reason)")
        } catch {
            throw .malformed("\(what) \(error.reason)")
        }
    }

    /// The id of an event derived from a delivery: the provider's id when it is a UUID, otherwise a name-based UUID.
    static func eventID(_ providerID: String?, prefix: String, body: [UInt8]) -> UUID {
        if let providerID, !providerID.isEmpty { return UUID.eventID(from: providerID, prefix: prefix) }
        return UUID(name: "\(prefix):body:\(ByteEncoding.hex.encode(DigestAlgorithm.sha256.hash(body)))")
    }

    /// The related resource naming the endpoint that received an event.
    var webhookResource: Resource {
        Resource([Resource.idLabel: "tripline.webhook.\(endpoint.slug)", Resource.roleLabel: "webhook", "prefect.resource.name": endpoint.name])
    }
}

extension JSONValue {
    /// The member at a dot path (`data.object.id`), or `nil`.
    public subscript(path path: String) -> JSONValue? {
        var current: JSONValue? = self
        for component in path.split(separator: ".") {
            guard case .object(let object)? = current else { return nil }
            current = object[String(component)]
        }
        return current
    }

    /// A string member, or a number written as text.
    public var textValue: String? {
        switch self {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): String(number)
        case .bool(let flag): String(flag)
        default: nil
        }
    }
}
