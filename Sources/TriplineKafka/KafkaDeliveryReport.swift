/// The broker's confirmation of a produced record.
public struct KafkaDeliveryReport: Sendable, Hashable {
    /// The topic.
    public var topic: String
    /// The partition the record was written to.
    public var partition: KafkaPartition
    /// The offset the broker gave the record (`nil` if the broker did not tell).
    public var offset: Int64?

    /// Creates a report.
    public init(topic: String, partition: KafkaPartition, offset: Int64?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}
