public import TriplineCore

/// A webhook endpoint declared in `rules/webhooks/`: served at `/hooks/{slug}`, verified and mapped by its preset.
public struct WebhookEndpoint: Sendable {
    /// How requests are verified and turned into events.
    public enum Preset: String, Sendable, CaseIterable {
        case github, stripe, slack
        case awsSNS = "aws-sns"
        case awsS3 = "aws-s3"
        case cloudevents, generic
    }

    /// The path segment: `/hooks/{slug}`.
    public var slug: String
    /// A display name.
    public var name: String
    /// A description for people.
    public var description: String
    /// Whether the endpoint accepts requests (a disabled endpoint answers 404).
    public var enabled: Bool
    /// The preset.
    public var preset: Preset
    /// Signing secrets by reference; a request is valid when it verifies with any of them (rotation).
    public var secrets: [SecretReference]
    /// How far a signed timestamp may be from the server clock (Stripe, Slack, generic with a timestamp).
    public var tolerance: TimeSpan
    /// GitHub: accept the legacy `X-Hub-Signature` (SHA-1) when `X-Hub-Signature-256` is absent.
    public var allowSHA1: Bool
    /// A configurable HMAC signature (the `generic` preset; optional for `aws-s3` and `cloudevents`).
    public var signature: HMACScheme?
    /// Bearer or basic authentication, for senders that can only be given a URL and a credential.
    public var authentication: RequestAuthentication?
    /// Accept requests without any verification (only for endpoints behind something that verifies).
    public var unauthenticated: Bool
    /// SNS: the topic ARNs (globs) whose messages are accepted and whose subscriptions are confirmed.
    public var topics: [String]
    /// SNS: confirm subscriptions to allowed topics by fetching their SubscribeURL.
    public var confirmSubscriptions: Bool
    /// `generic`: the event name (default `webhook.<slug>`).
    public var eventName: String?
    /// `generic`: the header whose value identifies a delivery (so that redeliveries are deduplicated).
    public var idHeader: String?
    /// Keep the bodies of failed deliveries in the delivery history.
    public var keepFailedBodies: Bool
    /// The largest accepted body in bytes (`nil`: the server's default).
    public var maximumBodySize: Int?
    /// A template that maps requests to events instead of the preset (which still verifies them).
    public var template: WebhookTemplate?
    /// A sample body (a file, relative to the rules file) that `tripline validate` maps with the template.
    public var samplePath: String?
    /// Where the endpoint is declared.
    public var source: SourceLocation?

    /// Creates an endpoint with the defaults.
    public init(slug: String, preset: Preset, secrets: [SecretReference] = []) {
        self.slug = slug
        self.name = slug
        self.description = ""
        self.enabled = true
        self.preset = preset
        self.secrets = secrets
        self.tolerance = .seconds(300)
        self.allowSHA1 = false
        self.signature = nil
        self.authentication = nil
        self.unauthenticated = false
        self.topics = []
        self.confirmSubscriptions = true
        self.eventName = nil
        self.idHeader = nil
        self.keepFailedBodies = false
        self.maximumBodySize = nil
        self.template = nil
        self.samplePath = nil
        self.source = nil
    }
}

/// A signature scheme described in configuration: enough for most providers that sign with an HMAC.
public struct HMACScheme: Sendable, Hashable {
    /// The header carrying the signature.
    public var header: String
    /// The hash function.
    public var algorithm: DigestAlgorithm
    /// How the signature is written.
    public var encoding: ByteEncoding
    /// A prefix before the encoded signature, e.g. `sha256=`.
    public var prefix: String
    /// The header carrying the signed timestamp (Unix seconds or milliseconds, or RFC 3339), if any.
    public var timestampHeader: String?
    /// What is signed: a layout with `{body}`, `{timestamp}`, `{method}`, `{path}` and `{header:Name}`.
    public var signedPayload: String

    /// Creates a scheme; the signed payload defaults to `{body}`, or `{timestamp}.{body}` with a timestamp header.
    public init(
        header: String, algorithm: DigestAlgorithm = .sha256, encoding: ByteEncoding = .hex, prefix: String = "", timestampHeader: String? = nil,
        signedPayload: String? = nil
    ) {
        self.header = header
        self.algorithm = algorithm
        self.encoding = encoding
        self.prefix = prefix
        self.timestampHeader = timestampHeader
        self.signedPayload = signedPayload ?? (timestampHeader == nil ? "{body}" : "{timestamp}.{body}")
    }
}

/// Credentials a sender presents instead of a signature. Each lists one or more secrets, any of which is accepted, so
/// that a credential can be rotated without refusing deliveries.
public enum RequestAuthentication: Sendable, Hashable {
    /// `Authorization: Bearer <token>`.
    case bearer([SecretReference])
    /// `Authorization: Basic base64(username:password)`.
    case basic(username: String, passwords: [SecretReference])

    /// The secrets, any of which is accepted.
    public var references: [SecretReference] {
        switch self {
        case .bearer(let references), .basic(_, let references): references
        }
    }
}
