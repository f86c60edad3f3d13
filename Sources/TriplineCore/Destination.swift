/// A place actions deliver to, declared by name under `destinations:` in a rules file. Secrets are never written in
/// the rules: they are references (`env:NAME`, `file:PATH`) resolved when an action runs.
public struct Destination: Sendable, Hashable {
    /// What kind of service the destination is.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A Slack incoming webhook.
        case slack
        /// PagerDuty's Events API v2, with a routing key.
        case pagerduty
        /// Any HTTP endpoint.
        case webhook
        /// A Prefect server's API.
        case prefect
        /// Kafka brokers (for `kafka-produce`).
        case kafka
    }

    /// The name actions use (`destination: ops-slack`).
    public var name: String
    /// The kind.
    public var kind: Kind
    /// Slack: the webhook URL (secret). PagerDuty: the events endpoint (default `https://events.pagerduty.com/v2/enqueue`).
    /// Webhook: the URL. Prefect: the API URL.
    public var url: SecretValue?
    /// PagerDuty's routing (integration) key (secret).
    public var routingKey: SecretValue?
    /// Prefect's API key (secret, optional).
    public var apiKey: SecretValue?
    /// Webhook: the HTTP method (default POST).
    public var method: String
    /// Webhook: headers sent with every call; values may be secret references.
    public var headers: [String: SecretValue]
    /// Webhook: whether private, loopback and link-local addresses may be called (default false).
    public var allowPrivateNetwork: Bool
    /// How long one request may take.
    public var timeout: TimeSpan
    /// The rate limit, when not the kind's default.
    public var rateLimit: RateLimit?
    /// Kafka: `host:port` of the brokers.
    public var brokers: [String] = []
    /// Kafka: librdkafka properties (security settings); values may be secret references.
    public var properties: [String: SecretValue] = [:]
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a destination.
    public init(
        name: String, kind: Kind, url: SecretValue? = nil, routingKey: SecretValue? = nil, apiKey: SecretValue? = nil, method: String = "POST",
        headers: [String: SecretValue] = [:], allowPrivateNetwork: Bool = false, timeout: TimeSpan = .seconds(10), rateLimit: RateLimit? = nil,
        source: SourceLocation? = nil
    ) {
        self.name = name
        self.kind = kind
        self.url = url
        self.routingKey = routingKey
        self.apiKey = apiKey
        self.method = method
        self.headers = headers
        self.allowPrivateNetwork = allowPrivateNetwork
        self.timeout = timeout
        self.rateLimit = rateLimit
        self.source = source
    }

    /// The rate limit in force: the declared one, or the kind's default (Slack: 1 per second per webhook; PagerDuty:
    /// 120 per minute per routing key; none for webhooks and Prefect).
    public var effectiveRateLimit: RateLimit? {
        if let rateLimit { return rateLimit.count == 0 ? nil : rateLimit }
        switch kind {
        case .slack: return RateLimit(count: 1, per: .seconds(1), burst: 1)
        case .pagerduty: return RateLimit(count: 120, per: .seconds(60), burst: 10)
        case .webhook, .prefect, .kafka: return nil
        }
    }
}

/// A value that may be a secret reference: `env:NAME` (an environment variable) or `file:PATH` (a file's content,
/// trailing newline removed). Only references are accepted where a secret is expected.
public enum SecretValue: Sendable, Hashable, CustomStringConvertible {
    /// Written in the rules as is (not a secret).
    case literal(String)
    /// The environment variable `NAME`.
    case environment(String)
    /// The content of the file at `PATH`.
    case file(String)

    /// Parses `env:NAME`, `file:PATH` or a literal.
    public init(_ text: String) {
        if text.hasPrefix("env:") {
            self = .environment(String(text.dropFirst(4)))
        } else if text.hasPrefix("file:") {
            self = .file(String(text.dropFirst(5)))
        } else {
            self = .literal(text)
        }
    }

    /// Whether this is a reference rather than a literal.
    public var isReference: Bool {
        if case .literal = self { return false }
        return true
    }

    /// The reference as written (`env:NAME`), or `<literal>` for a literal, so that a value never reaches a log.
    public var description: String {
        switch self {
        case .literal: "<literal>"
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        }
    }
}

/// A token-bucket rate limit: `count` per `per`, with bursts of up to `burst`.
public struct RateLimit: Sendable, Hashable {
    /// Requests per period (0 disables the limit).
    public var count: Int
    /// The period.
    public var per: TimeSpan
    /// The bucket's size.
    public var burst: Int

    /// Creates a limit.
    public init(count: Int, per: TimeSpan, burst: Int = 1) {
        self.count = count
        self.per = per
        self.burst = max(1, burst)
    }
}
