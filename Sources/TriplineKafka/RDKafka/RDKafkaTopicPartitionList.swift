internal import CRdKafka

/// A `rd_kafka_topic_partition_list_t` built from Swift values, destroyed when this wrapper goes away.
final class RDKafkaTopicPartitionList {
    private let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    /// A list of positions (topic, partition, next offset).
    init(_ offsets: [KafkaTopicPartitionOffset]) {
        list = rd_kafka_topic_partition_list_new(Int32(max(1, offsets.count)))
        for position in offsets {
            let element = rd_kafka_topic_partition_list_add(list, position.topicPartition.topic, position.topicPartition.partition.rawValue)
            element?.pointee.offset = position.nextOffset
        }
    }

    /// A list of topics (or `^regex` patterns) for a subscription.
    init(topics: [String]) {
        list = rd_kafka_topic_partition_list_new(Int32(max(1, topics.count)))
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
    }

    deinit { rd_kafka_topic_partition_list_destroy(list) }

    /// Runs `body` with the list; the pointer must not escape.
    func withPointer<T>(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> T) rethrows -> T { try body(list) }

    /// The per-partition errors librdkafka set on the list's elements.
    func elementErrors() -> [(KafkaTopicPartition, rd_kafka_resp_err_t)] {
        Self.elements(list).compactMap { element in element.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : (element.topicPartition, element.err) }
    }

    struct Element {
        var topicPartition: KafkaTopicPartition
        var offset: Int64
        var err: rd_kafka_resp_err_t
    }

    /// Copies the elements of a list librdkafka owns.
    static func elements(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [Element] {
        guard let list, let elements = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = elements[index]
            let topic = element.topic.map { String(cString: $0) } ?? ""
            return Element(topicPartition: KafkaTopicPartition(topic: topic, partition: KafkaPartition(rawValue: element.partition)), offset: element.offset, err: element.err)
        }
    }
}
