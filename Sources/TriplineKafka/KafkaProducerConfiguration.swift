/// How a ``KafkaProducer`` connects and delivers. It is idempotent with `acks=all`: a record is confirmed only once
/// every in-sync replica has it, and retries never write it twice.
public struct KafkaProducerConfiguration: Sendable {
    /// `host:port` of one or more brokers.
    public var bootstrapServers: [String]
    /// How long a record may take to be delivered, retries included (`message.timeout.ms`).
    public var deliveryTimeout: Duration = .seconds(30)
    /// How long a record may wait to be batched with others (`linger.ms`).
    public var linger: Duration = .milliseconds(5)
    /// How long shutdown waits for records still on their way before failing them.
    public var flushTimeout: Duration = .seconds(10)
    /// How long the event loop's blocking wait lasts before it looks at shutdown again.
    public var pollInterval: Duration = .milliseconds(100)
    /// Stop when the service group shuts down gracefully. An owner that still produces during its own shutdown sets
    /// this to `false` and calls ``KafkaProducer/triggerGracefulShutdown()`` when it is done.
    public var stopOnGracefulShutdown = true
    /// Any other librdkafka property (security settings …); applied last, except `enable.idempotence` and `acks`.
    public var additionalProperties: [String: String] = [:]

    /// Creates a configuration.
    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    /// The librdkafka properties.
    var properties: [String: String] {
        var properties: [String: String] = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "message.timeout.ms": String(deliveryTimeout.milliseconds),
            "linger.ms": String(linger.milliseconds),
            "client.id": "tripline",
        ]
        properties.merge(additionalProperties) { _, new in new }
        properties["enable.idempotence"] = "true"
        properties["acks"] = "all"
        return properties
    }
}
