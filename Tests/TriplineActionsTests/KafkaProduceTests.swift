import Foundation
import Logging
import Metrics
import Testing
import TriplineActions
import TriplineCore
import TriplineKafka
import TriplineStorage

/// `kafka-produce` against librdkafka's mock cluster: the record arrives with its templated key, value and headers
/// and the idempotency key; the action counts as executed only after the broker confirmed it.
@Suite struct KafkaProduceTests {
    @Test func aRecordIsProducedConfirmedAndReadBack() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        var destination = Destination(name: "alerts-out", kind: .kafka)
        destination.brokers = cluster.bootstrapServers
        let producers = KafkaProducerDirectory(
            destinations: [destination], secrets: SecretResolver(), logger: Logger(label: "test"), metricsFactory: NOOPMetricsHandler.instance)
        let running = producers.services.map { producer in Task { try await producer.run() } }
        #expect(running.count == 1)
        let harness = try DispatcherHarness(destinations: [destination], kafka: producers)
        harness.start()
        let id = try await harness.fire([
            Action(
                type: "kafka-produce",
                fields: [
                    "destination": "alerts-out", "topic": "alerts", "key": "{{ event.event }}",
                    "value": ["automation": "{{ automation.name }}", "event": "{{ event.id }}"], "headers": ["source": "tripline-test"],
                ])
        ])[0]
        let deliveries = try await harness.settle()
        await harness.stop()
        _ = deliveries
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .delivered, "\(delivery.attempts.map(\.error))")
        #expect(delivery.attempts.count == 1)

        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "read-back", subscription: .topics(["alerts"]))
        configuration.sessionTimeout = .seconds(6)
        configuration.pollInterval = .milliseconds(50)
        let consumer = try KafkaConsumer(configuration: configuration, logger: Logger(label: "test"), metricsFactory: NOOPMetricsHandler.instance)
        let consuming = Task { try await consumer.run() }
        var iterator = consumer.messages.makeAsyncIterator()
        let record = try #require(try await iterator.next())
        #expect(record.key.map { String(decoding: $0, as: UTF8.self) } == "test.fired")
        let value = try JSONValue.parse(Data(record.value ?? []))
        #expect(value.objectValue?["event"]?.stringValue != nil)
        #expect(value.objectValue?["automation"]?.stringValue?.isEmpty == false)
        #expect(record.header("source")?.value.map { String(decoding: $0, as: UTF8.self) } == "tripline-test")
        #expect(record.header("tripline-idempotency-key")?.value.map { String(decoding: $0, as: UTF8.self) } == delivery.jsonValue(withAttempts: false).objectValue?["idempotency_key"]?.stringValue)
        consumer.triggerGracefulShutdown()
        try await consuming.value
        for producer in producers.services { producer.triggerGracefulShutdown() }
        for task in running { try await task.value }
    }

    @Test func anUndeclaredOrUnreachableDestinationFailsAsConfigured() async throws {
        // Declared after the server started: no producer; a configuration error, not retried.
        var destination = Destination(name: "late", kind: .kafka)
        destination.brokers = ["127.0.0.1:1"]
        let harness = try DispatcherHarness(destinations: [destination])
        harness.start()
        let id = try await harness.fire([Action(type: "kafka-produce", fields: ["destination": "late", "topic": "t", "value": "x"])])[0]
        _ = try await harness.settle()
        await harness.stop()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .dead)
        #expect(delivery.attempts.count == 1, "a configuration error is not retried")
        #expect(delivery.attempts.first?.error?.contains("kafka destinations connect at start") == true, "\(delivery.attempts.map(\.error))")
    }
}
