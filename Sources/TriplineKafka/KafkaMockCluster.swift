internal import CRdKafka

/// librdkafka's in-process mock cluster: brokers on loopback that speak enough of the Kafka protocol for producers,
/// consumer groups and commits, without a real broker. Give ``bootstrapServers`` to every client: all of them then
/// share one cluster (a client's own `test.mock.num.brokers` would get a private one).
public final class KafkaMockCluster: Sendable {
    /// The client that hosts the cluster's threads; it must outlive the cluster.
    private let host: SendableOpaquePointer
    private let cluster: SendableOpaquePointer

    /// Starts a cluster of `brokers` brokers.
    /// - Throws: A ``KafkaError`` when librdkafka cannot create it.
    public init(brokers: Int32 = 3) throws(KafkaError) {
        let conf = try RDKafkaConfig.make(["log_level": "3"])
        var message = [CChar](repeating: 0, count: 512)
        guard let host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &message, message.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(.client, "cannot create the mock cluster's host client")
        }
        guard let cluster = rd_kafka_mock_cluster_new(host, brokers) else {
            rd_kafka_destroy(host)
            throw KafkaError(.client, "cannot create the mock cluster")
        }
        self.host = SendableOpaquePointer(host)
        self.cluster = SendableOpaquePointer(cluster)
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster.pointer)
        rd_kafka_destroy(host.pointer)
    }

    /// The brokers' addresses.
    public var bootstrapServers: [String] {
        String(cString: rd_kafka_mock_cluster_bootstraps(cluster.pointer)).split(separator: ",").map(String.init)
    }

    /// Creates a topic (topics are otherwise auto-created with the cluster's default partition count).
    /// - Throws: A ``KafkaError`` when the cluster refuses.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws(KafkaError) {
        let result = rd_kafka_mock_topic_create(cluster.pointer, name, partitions, replicationFactor)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.client, "cannot create topic \(name): \(String(cString: rd_kafka_err2str(result)))", rdKafkaCode: result.rawValue)
        }
    }
}
