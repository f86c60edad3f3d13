public import Foundation

/// A record read from Kafka, copied out of librdkafka's buffers. Keys and values may be absent (a tombstone has no
/// value) or empty; both are legal records.
public struct KafkaConsumerMessage: Sendable, Hashable {
    /// The topic the record was read from.
    public var topic: String
    /// The partition.
    public var partition: KafkaPartition
    /// The record's offset in its partition.
    public var offset: Int64
    /// The key, or `nil` when the record has none.
    public var key: [UInt8]?
    /// The value, or `nil` for a tombstone.
    public var value: [UInt8]?
    /// The headers, in record order (names may repeat).
    public var headers: [KafkaHeader]
    /// The record's timestamp (create or log-append time), when the record has one.
    public var timestamp: Date?

    /// Creates a message (librdkafka's records are converted by the consumer; tests build their own).
    public init(
        topic: String, partition: KafkaPartition, offset: Int64, key: [UInt8]? = nil, value: [UInt8]?, headers: [KafkaHeader] = [],
        timestamp: Date? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// The topic and partition.
    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }

    /// Whether the record is a tombstone (no value).
    public var isTombstone: Bool { value == nil }

    /// The first header named `key`, if any.
    public func header(_ key: String) -> KafkaHeader? { headers.first { $0.key == key } }
}

/// A record's position: the offset the consumer continues from after it (`offset + 1`), which is what a commit
/// stores.
public struct KafkaTopicPartitionOffset: Sendable, Hashable {
    /// The topic and partition.
    public var topicPartition: KafkaTopicPartition
    /// The next offset to read.
    public var nextOffset: Int64

    /// Creates a position.
    public init(topicPartition: KafkaTopicPartition, nextOffset: Int64) {
        self.topicPartition = topicPartition
        self.nextOffset = nextOffset
    }

    /// The position after `message`.
    public init(after message: KafkaConsumerMessage) {
        self.init(topicPartition: message.topicPartition, nextOffset: message.offset + 1)
    }
}
