public import Foundation
public import TriplineCore

/// A Kafka source declared in `rules/sources/`: a consumer group that reads topics and turns their records into
/// events.
public struct KafkaSource: Sendable, Hashable {
    /// How a record's value becomes events.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        /// The value is a Prefect event (JSON); `id` and `occurred` may be left out.
        case prefectEvent = "prefect-event"
        /// A CloudEvent: structured (the value is the JSON event) or binary (`ce_*` headers, the value is the data).
        case cloudEvents = "cloudevents"
        /// S3 event notifications as S3, SQS, SNS or EventBridge put them on Kafka.
        case awsS3 = "aws-s3"
        /// Any value, mapped to an event by the templates of ``KafkaSource/mapping``.
        case raw
    }

    /// A librdkafka property's value: written in the rules file, or a reference to a secret.
    public enum PropertyValue: Sendable, Hashable, CustomStringConvertible {
        case plain(String)
        case secret(SecretReference)

        /// The value as written; a secret prints as its reference.
        public var description: String {
            switch self {
            case .plain(let text): text
            case .secret(let reference): "\(reference)"
            }
        }
    }

    /// The source's name, unique among sources; it names the source in logs, metrics and rejected-record events.
    public var name: String
    /// Disabled sources are checked but not started.
    public var enabled = true
    /// `host:port` of the bootstrap brokers.
    public var brokers: [String] = []
    /// The topics to read (or ``topicPattern``).
    public var topics: [String] = []
    /// A regular expression for the topics to read, including topics created later.
    public var topicPattern: String?
    /// The consumer group; defaults to `tripline-<name>`.
    public var groupID: String
    /// Where a new group starts: `earliest` or `latest`.
    public var startFromEarliest = true
    /// How values become events.
    public var format: Format = .prefectEvent
    /// Where rejected records are also produced, if anywhere.
    public var deadLetterTopic: String?
    /// The most records stored in one durable commit.
    public var batchSize = 500
    /// For format `raw`: how a record becomes an event.
    public var mapping: RawMapping?
    /// librdkafka properties (security settings and the like).
    public var properties: [String: PropertyValue] = [:]
    /// Where the source is declared.
    public var location: SourceLocation?

    /// Creates a source.
    public init(name: String) {
        self.name = name
        self.groupID = "tripline-\(name)"
    }

    /// Templates (Stencil syntax) that make an event of a record. They see `value` (the value parsed as JSON, or
    /// its text when it is not JSON), `text` (the value as text), `key`, `headers` (name → text), `topic`,
    /// `partition`, `offset` and `timestamp` (RFC 3339).
    public struct RawMapping: Sendable, Hashable {
        /// The event's name.
        public var event: String
        /// The primary resource's labels; `prefect.resource.id` is required.
        public var resource: [String: String]
        /// The event id: a UUID as rendered, any other text hashed into a name-based UUID; by default the record's
        /// position (topic, partition, offset).
        public var id: String?
        /// When the event happened (RFC 3339); by default the record's timestamp.
        public var occurred: String?

        /// Creates a mapping.
        public init(event: String, resource: [String: String], id: String? = nil, occurred: String? = nil) {
            self.event = event
            self.resource = resource
            self.id = id
            self.occurred = occurred
        }
    }

    /// Property names whose values are secrets: they must be `env:`/`file:` references, never written inline.
    static func isSecretProperty(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return lowered.contains("password") || lowered.contains("secret") || lowered == "ssl.key.pem" || lowered == "sasl.oauthbearer.config"
            || lowered == "ssl.keystore.password"
    }

    /// The properties with every secret read.
    /// - Throws: A ``TriplineError`` naming the property and the reference (never the value) that cannot be read.
    public func resolvedProperties(environment: [String: String] = ProcessInfo.processInfo.environment) throws(TriplineError) -> [String: String] {
        var resolved: [String: String] = [:]
        for (key, value) in properties {
            switch value {
            case .plain(let text): resolved[key] = text
            case .secret(let reference):
                do {
                    resolved[key] = try reference.resolve(environment: environment).text
                } catch {
                    throw TriplineError(error.code, "\(error.reason)", path: "properties.\(key)", location: location)
                }
            }
        }
        return resolved
    }
}

extension KafkaSource {
    /// Syntax problems of the `raw` mapping's templates, each naming its field and the source's place.
    public func templateProblems(_ renderer: any TemplateRenderer) -> [TriplineError] {
        guard let mapping else { return [] }
        var fields = [("mapping.event", mapping.event)]
        fields += mapping.resource.sorted { $0.key < $1.key }.map { ("mapping.resource.\($0.key)", $0.value) }
        if let id = mapping.id { fields.append(("mapping.id", id)) }
        if let occurred = mapping.occurred { fields.append(("mapping.occurred", occurred)) }
        var problems: [TriplineError] = []
        for (path, template) in fields {
            do {
                try renderer.check(template)
            } catch {
                problems.append(TriplineError(error.code, error.reason, path: path, location: location, hint: error.hint))
            }
        }
        return problems
    }
}
