import Foundation
import Logging
import Metrics
import MetricsTestKit
import Testing
import TriplineKafka

/// A consumer running its service loop in a task, for a test.
final class RunningConsumer: Sendable {
    let consumer: KafkaConsumer
    let task: Task<Void, any Error>

    init(_ configuration: KafkaConsumerConfiguration, metrics: any MetricsFactory = TestMetrics()) throws {
        let consumer = try KafkaConsumer(configuration: configuration, logger: testLogger("consumer"), metricsFactory: metrics)
        self.consumer = consumer
        task = Task { try await consumer.run() }
    }

    /// Closes the consumer and waits until it has left the group.
    func stop() async throws {
        consumer.triggerGracefulShutdown()
        try await task.value
    }
}

/// A producer running its service loop in a task, for a test.
final class RunningProducer: Sendable {
    let producer: KafkaProducer
    let task: Task<Void, any Error>

    init(_ servers: [String]) throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: servers), logger: testLogger("producer"), metricsFactory: TestMetrics())
        self.producer = producer
        task = Task { try await producer.run() }
    }

    func stop() async throws {
        producer.triggerGracefulShutdown()
        try await task.value
    }

    /// Produces `count` records `prefix-i` to `topic`, keyed by `key(i)`.
    func produce(_ count: Int, to topic: String, prefix: String = "m") async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    _ = try await self.producer.produce(topic: topic, key: Array("k\(index)".utf8), value: Array("\(prefix)-\(index)".utf8))
                }
            }
            try await group.waitForAll()
        }
    }
}

func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: "test.kafka.\(label)")
    logger.logLevel = ProcessInfo.processInfo.environment["TRIPLINE_TEST_LOG"] == "1" ? .debug : .critical
    return logger
}

func consumerConfiguration(_ servers: [String], group: String, topics: [String]) -> KafkaConsumerConfiguration {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: group, subscription: .topics(topics))
    configuration.sessionTimeout = .seconds(6)
    configuration.pollInterval = .milliseconds(50)
    configuration.metricsInterval = .milliseconds(200)
    configuration.additionalProperties["heartbeat.interval.ms"] = "500"
    configuration.additionalProperties["max.poll.interval.ms"] = "10000"
    return configuration
}

/// One iterator over a consumer's records for the whole test (dropping the iterator closes the consumer).
final class Reader: @unchecked Sendable {
    // Used by one test task at a time.
    var iterator: KafkaConsumerMessages.AsyncIterator

    init(_ consumer: KafkaConsumer) { iterator = consumer.messages.makeAsyncIterator() }

    /// Reads `count` records (the test's time limit catches a hang).
    func read(_ count: Int) async throws -> [KafkaConsumerMessage] {
        var received: [KafkaConsumerMessage] = []
        while received.count < count, let message = try await iterator.next() { received.append(message) }
        return received
    }

    /// Reads whatever arrives within `window`.
    func drain(for window: Duration) async throws -> [KafkaConsumerMessage] {
        var received: [KafkaConsumerMessage] = []
        let deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline {
            let box = self
            let next = try await withThrowingTaskGroup(of: KafkaConsumerMessage?.self) { group in
                group.addTask { try await box.iterator.next() }
                group.addTask {
                    try? await Task.sleep(for: deadline - ContinuousClock.now)
                    return nil
                }
                let first = try await group.next()!
                group.cancelAll()
                // The other child's record, if it got one before it saw the cancellation.
                var other: KafkaConsumerMessage?
                while let more = try await group.next() { if let more { other = more } }
                return first.map { [$0] + (other.map { [$0] } ?? []) } ?? (other.map { [$0] } ?? [])
            }
            if next.isEmpty { break }
            received += next
        }
        return received
    }
}

/// Waits until `condition` holds, up to `timeout`.
func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return false
}

func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
