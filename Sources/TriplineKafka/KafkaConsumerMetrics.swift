internal import CoreMetrics

/// The consumer's metrics, labelled with its group.
struct KafkaConsumerMetrics: Sendable {
    let factory: any MetricsFactory
    let group: String
    let messages: Counter
    let messagesPerSecond: Gauge
    let commitLatency: Timer
    let errors: Counter

    init(factory: any MetricsFactory, group: String) {
        self.factory = factory
        self.group = group
        let dimensions = [("group", group)]
        messages = Counter(label: "tripline_kafka_messages_total", dimensions: dimensions, factory: factory)
        messagesPerSecond = Gauge(label: "tripline_kafka_messages_per_second", dimensions: dimensions, factory: factory)
        commitLatency = Timer(label: "tripline_kafka_commit_seconds", dimensions: dimensions, factory: factory)
        errors = Counter(label: "tripline_kafka_consumer_errors_total", dimensions: dimensions, factory: factory)
    }

    /// The lag gauge of one partition: records written after the last one this consumer processed.
    func lag(_ partition: KafkaTopicPartition) -> Gauge {
        Gauge(
            label: "tripline_kafka_consumer_lag",
            dimensions: [("group", group), ("topic", partition.topic), ("partition", partition.partition.description)], factory: factory)
    }
}
