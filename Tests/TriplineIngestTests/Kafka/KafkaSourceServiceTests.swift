import Foundation
import Logging
import MetricsTestKit
import Synchronization
import Testing
import TriplineCore
import TriplineIngest
import TriplineKafka

/// A sink that keeps events by id (as the event log does) and can be told to fail.
final class MemorySink: KafkaEventSink {
    struct State {
        var events: [UUID: Event] = [:]
        var attempts = 0
        var failuresLeft = 0
        var largestBatch = 0
    }

    let state = Mutex(State())

    func ingest(_ events: [Event]) async throws {
        try state.withLock { state in
            state.attempts += 1
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                throw TriplineError(.limitExceeded, "the test sink refuses")
            }
            state.largestBatch = max(state.largestBatch, events.count)
            for event in events { state.events[event.id] = event }
        }
    }

    var count: Int { state.withLock { $0.events.count } }
}

/// The source service against librdkafka's mock cluster: offsets follow durability, failures are retried, poison
/// records become rejected events.
@Suite(.timeLimit(.minutes(3))) struct KafkaSourceServiceTests {
    func logger() -> Logger {
        var logger = Logger(label: "test.kafka.source")
        logger.logLevel = .critical
        return logger
    }

    func produce(_ cluster: KafkaMockCluster, _ topic: String, _ values: [[UInt8]?]) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers), logger: logger(), metricsFactory: TestMetrics())
        let task = Task { try await producer.run() }
        for value in values { _ = try await producer.produce(topic: topic, key: nil, value: value) }
        producer.triggerGracefulShutdown()
        try await task.value
    }

    func event(_ number: Int) -> [UInt8] {
        Array(#"{"id":"00000000-0000-4000-8000-\#(String(format: "%012d", number))","occurred":"2026-11-01T00:00:00Z","event":"test.kafka","resource":{"prefect.resource.id":"r.\#(number)"}}"#.utf8)
    }

    func source(_ cluster: KafkaMockCluster, topic: String, batchSize: Int = 500) -> KafkaSource {
        var source = KafkaSource(name: "test")
        source.brokers = cluster.bootstrapServers
        source.topics = [topic]
        source.groupID = "group-\(topic)"
        source.batchSize = batchSize
        return source
    }

    /// Runs the source until `done` holds (or 30 s pass), then stops it gracefully.
    func run(_ service: KafkaSourceService, until done: @escaping @Sendable () -> Bool) async throws {
        let task = Task { try await service.run() }
        let deadline = ContinuousClock.now + .seconds(30)
        while !done(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        service.triggerGracefulShutdown()
        try await task.value
    }

    func tuning(_ configuration: inout KafkaConsumerConfiguration) {
        configuration.sessionTimeout = .seconds(6)
        configuration.pollInterval = .milliseconds(50)
    }

    /// The offset a new member of the source's group starts from.
    func committedStart(_ cluster: KafkaMockCluster, _ source: KafkaSource) async throws -> Int64? {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: source.groupID, subscription: .topics(source.topics))
        tuning(&configuration)
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger(), metricsFactory: TestMetrics())
        let task = Task { try await consumer.run() }
        let deadline = ContinuousClock.now + .seconds(25)
        let batch = try await consumer.nextBatch(maximum: 1) { ContinuousClock.now >= deadline }
        consumer.triggerGracefulShutdown()
        try await task.value
        return batch?.first?.offset
    }

    @Test func offsetsAreCommittedOnlyOnceTheEventsAreDurable() async throws {
        let cluster = try KafkaMockCluster()
        let topic = "durable"
        try cluster.createTopic(topic, partitions: 1)
        try await produce(cluster, topic, (0..<10).map(event))
        let declaration = source(cluster, topic: topic)

        // The log refuses everything: nothing may be acknowledged.
        let refusing = MemorySink()
        refusing.state.withLock { $0.failuresLeft = .max }
        let first = try KafkaSourceService(source: declaration, sink: refusing, logger: logger(), metricsFactory: TestMetrics(), tuning: tuning)
        try await run(first) { refusing.state.withLock { $0.attempts >= 3 } }
        #expect(refusing.count == 0)
        #expect(try await committedStart(cluster, declaration) == 0, "no offset was committed while the events were not durable")

        // The log works: everything is stored once and acknowledged.
        let sink = MemorySink()
        sink.state.withLock { $0.failuresLeft = 2 }
        let metrics = TestMetrics()
        let second = try KafkaSourceService(source: declaration, sink: sink, logger: logger(), metricsFactory: metrics, tuning: tuning)
        try await run(second) { sink.count == 10 }
        #expect(sink.count == 10, "two refusals were retried, nothing lost")
        #expect(metrics.counterTotal(label: "tripline_kafka_source_ingest_retries_total") >= 2)
        try await produce(cluster, topic, [event(10)])
        #expect(try await committedStart(cluster, declaration) == 10, "the group continues after the last durable record")
    }

    @Test func poisonRecordsBecomeRejectedEventsAndThePartitionMovesOn() async throws {
        let cluster = try KafkaMockCluster()
        let topic = "poison"
        try cluster.createTopic(topic, partitions: 1)
        try await produce(cluster, topic, [event(1), Array("garbage".utf8), nil, [], event(2)])
        let declaration = source(cluster, topic: topic)
        let sink = MemorySink()
        let metrics = TestMetrics()
        let service = try KafkaSourceService(source: declaration, sink: sink, logger: logger(), metricsFactory: metrics, tuning: tuning)
        try await run(service) { sink.count == 5 }
        let events = sink.state.withLock { Array($0.events.values) }
        let rejected = events.filter { $0.event == KafkaSourceService.rejectedEventName }
        #expect(events.filter { $0.event == "test.kafka" }.count == 2)
        #expect(rejected.map { $0.payload["offset"] }.compactMap { $0 }.sorted { "\($0)" < "\($1)" } == [.int(1), .int(2), .int(3)])
        #expect(Set(rejected.compactMap { $0.payload["reason"]?.stringValue }) == ["invalid_json", "empty"])
        #expect(rejected.allSatisfy { $0.resource.id == "tripline.kafka-source.test" && $0.payload["topic"] == .string(topic) })
        #expect(metrics.counterTotal(label: "tripline_kafka_records_rejected_total") == 3)
        let restart = try await committedStart(cluster, declaration)
        #expect(restart == nil, "every record, poison included, was acknowledged; a new member read offset \(restart.map(String.init) ?? "none")")
    }

    @Test func batchesAreBoundedByTheBatchSize() async throws {
        let cluster = try KafkaMockCluster()
        let topic = "bounded"
        try cluster.createTopic(topic, partitions: 2)
        try await produce(cluster, topic, (0..<300).map(event))
        let sink = MemorySink()
        let service = try KafkaSourceService(source: source(cluster, topic: topic, batchSize: 25), sink: sink, logger: logger(), metricsFactory: TestMetrics(), tuning: tuning)
        try await run(service) { sink.count == 300 }
        #expect(sink.count == 300)
        #expect(sink.state.withLock { $0.largestBatch } <= 25, "one durable commit holds at most batch_size records")
    }

    @Test func anUnreadableSecretNamesItsReferenceOnly() throws {
        var declaration = KafkaSource(name: "secret")
        declaration.brokers = ["127.0.0.1:1"]
        declaration.topics = ["t"]
        declaration.properties["sasl.password"] = .secret(.environment("TRIPLINE_TEST_UNSET_PASSWORD"))
        do {
            _ = try KafkaSourceService(source: declaration, sink: MemorySink(), logger: logger(), metricsFactory: TestMetrics(), environment: [:])
            Issue.record("a source with an unreadable secret was created")
        } catch {
            #expect("\(error)".contains("TRIPLINE_TEST_UNSET_PASSWORD"))
        }
    }
}
