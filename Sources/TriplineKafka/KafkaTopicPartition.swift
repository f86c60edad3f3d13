/// A partition number of a topic.
public struct KafkaPartition: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The partition number (0-based).
    public var rawValue: Int32

    /// Creates a partition number.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Let librdkafka's partitioner choose (`RD_KAFKA_PARTITION_UA`).
    public static let unassigned = KafkaPartition(rawValue: -1)

    public static func < (lhs: KafkaPartition, rhs: KafkaPartition) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// A topic and one of its partitions.
public struct KafkaTopicPartition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The topic.
    public var topic: String
    /// The partition.
    public var partition: KafkaPartition

    /// Creates a topic-partition.
    public init(topic: String, partition: KafkaPartition) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (lhs: KafkaTopicPartition, rhs: KafkaTopicPartition) -> Bool {
        (lhs.topic, lhs.partition.rawValue) < (rhs.topic, rhs.partition.rawValue)
    }

    public var description: String { "\(topic)[\(partition)]" }
}
