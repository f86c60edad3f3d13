/// The logger metadata keys of Tripline's Kafka code, in one place so that logs can be searched by them.
public enum KafkaLoggingKeys {
    /// The consumer group.
    public static let group = "kafka.group"
    /// The librdkafka client (`rdkafka#consumer-1`).
    public static let client = "kafka.client"
    /// librdkafka's log facility.
    public static let facility = "rdkafka.facility"
    /// A Kafka source declared in the rules.
    public static let source = "kafka.source"
    /// A dead-letter topic.
    public static let deadLetterTopic = "kafka.dead_letter_topic"
}
