/// What a ``KafkaConsumer`` reads and how. Offsets are stored only by the application (``KafkaConsumer/storeOffset(_:)``)
/// after it processed a record; librdkafka commits stored offsets every ``autoCommitInterval`` and on close, and
/// ``KafkaConsumer/commit()`` commits them at once and waits for the broker.
public struct KafkaConsumerConfiguration: Sendable {
    /// What to read.
    public enum Subscription: Sendable, Hashable {
        /// These topics.
        case topics([String])
        /// Every topic whose name matches this regular expression (POSIX extended, as librdkafka uses it), including
        /// topics created later.
        case pattern(String)
    }

    /// Where a group without a committed offset starts.
    public enum StartPosition: String, Sendable, Hashable {
        /// The oldest record still in the partition.
        case earliest
        /// Only records written after the group joined.
        case latest
    }

    /// `host:port` of one or more brokers.
    public var bootstrapServers: [String]
    /// The consumer group; consumers of one group share the partitions.
    public var groupID: String
    /// What to read.
    public var subscription: Subscription
    /// Where a new group starts.
    public var startPosition: StartPosition = .earliest
    /// `partition.assignment.strategy`: `range,roundrobin` (eager, librdkafka's default) or `cooperative-sticky`
    /// (incremental rebalancing). Every member of a group must use the same kind.
    public var assignmentStrategy = "range,roundrobin"
    /// How long a blocking poll waits before looking at cancellation and shutdown again.
    public var pollInterval: Duration = .milliseconds(100)
    /// How often stored offsets are committed in the background.
    public var autoCommitInterval: Duration = .seconds(1)
    /// `session.timeout.ms`; `nil` keeps librdkafka's default (45 s).
    public var sessionTimeout: Duration?
    /// How long closing may take (leaving the group, the final commit) before the consumer gives up on it.
    public var closeTimeout: Duration = .seconds(30)
    /// How often lag and throughput gauges are updated.
    public var metricsInterval: Duration = .seconds(5)
    /// Close the consumer when the service group shuts down gracefully. An owner that must finish its own work
    /// first (store and commit offsets) sets this to `false` and calls ``KafkaConsumer/triggerGracefulShutdown()``.
    public var closeOnGracefulShutdown = true
    /// Upper bound of librdkafka's prefetch queue, in kilobytes (`queued.max.messages.kbytes`): with nobody reading,
    /// the consumer stops fetching once this much is buffered.
    public var maximumPrefetchKilobytes = 16_384
    /// Any other librdkafka property (security settings, timeouts …); applied last, so it overrides the settings
    /// above, except `enable.auto.offset.store`, which stays `false`.
    public var additionalProperties: [String: String] = [:]

    /// Creates a configuration.
    public init(bootstrapServers: [String], groupID: String, subscription: Subscription) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.subscription = subscription
    }

    /// The librdkafka properties.
    var properties: [String: String] {
        var properties: [String: String] = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "group.id": groupID,
            "auto.offset.reset": startPosition.rawValue,
            "partition.assignment.strategy": assignmentStrategy,
            "enable.auto.commit": "true",
            "auto.commit.interval.ms": String(autoCommitInterval.milliseconds),
            "enable.partition.eof": "false",
            "queued.max.messages.kbytes": String(maximumPrefetchKilobytes),
            "client.id": "tripline",
        ]
        if let sessionTimeout { properties["session.timeout.ms"] = String(sessionTimeout.milliseconds) }
        properties.merge(additionalProperties) { _, new in new }
        // Offsets are stored by the application after processing, never when a record is handed out.
        properties["enable.auto.offset.store"] = "false"
        return properties
    }
}

extension Duration {
    /// The duration in whole milliseconds (at least 1 for a positive duration).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let value = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return value == 0 && attoseconds > 0 ? 1 : value
    }
}
