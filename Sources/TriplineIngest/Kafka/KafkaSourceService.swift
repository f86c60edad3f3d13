public import Foundation
public import Logging
public import CoreMetrics
public import ServiceLifecycle
import Synchronization
public import TriplineCore
public import TriplineKafka

/// Where a Kafka source puts its events: the server's event pipeline.
public protocol KafkaEventSink: Sendable {
    /// Stores `events` durably (deduplicated by id) and returns once they are committed.
    /// - Throws: When nothing was stored (the source retries).
    func ingest(_ events: [Event]) async throws
}

/// Runs one Kafka source: reads records in batches, decodes them, stores the events durably through the sink, and
/// only then stores the records' offsets (committed in the background, on close and at shutdown). A record that
/// cannot be decoded is stored as a `tripline.kafka.record.rejected` event (and produced to the dead-letter topic
/// when one is configured), so the partition keeps moving and nothing disappears silently.
///
/// At-least-once with no duplicates in effect: after a crash or rebalance, records whose offsets were not committed
/// are read again, and their events, having the same ids, are stored once.
public final class KafkaSourceService: Service, Sendable {
    /// The name of the event recorded for a record that could not be decoded.
    public static let rejectedEventName = "tripline.kafka.record.rejected"

    let source: KafkaSource
    let consumer: KafkaConsumer
    let deadLetters: KafkaProducer?
    let sink: any KafkaEventSink
    let decoder: KafkaRecordDecoder
    let logger: Logger
    let metrics: KafkaSourceMetrics
    let stopping = Atomic<Bool>(false)

    /// Creates the source's consumer (and dead-letter producer).
    /// - Parameters:
    ///   - source: The declaration.
    ///   - sink: Where events go.
    ///   - logger: The root logger; the source adds its name.
    ///   - metricsFactory: Where metrics go.
    ///   - environment: Where `env:` secret references are read.
    ///   - tuning: Changes to the consumer configuration (tests shorten timeouts).
    /// - Throws: A ``TriplineError`` naming a secret reference that cannot be read, or a `KafkaError` when librdkafka
    ///   refuses a property (named without its value).
    public init(
        source: KafkaSource, sink: any KafkaEventSink, logger: Logger, metricsFactory: any MetricsFactory,
        environment: [String: String] = ProcessInfo.processInfo.environment, tuning: (inout KafkaConsumerConfiguration) -> Void = { _ in }
    ) throws {
        var logger = logger
        logger[metadataKey: "kafka.source"] = "\(source.name)"
        let properties = try source.resolvedProperties(environment: environment)
        let subscription: KafkaConsumerConfiguration.Subscription = source.topicPattern.map { .pattern($0) } ?? .topics(source.topics)
        var configuration = KafkaConsumerConfiguration(bootstrapServers: source.brokers, groupID: source.groupID, subscription: subscription)
        configuration.startPosition = source.startFromEarliest ? .earliest : .latest
        configuration.additionalProperties = properties
        // The source commits and closes in order at shutdown: first its last batch, then the consumer.
        configuration.closeOnGracefulShutdown = false
        tuning(&configuration)
        self.consumer = try KafkaConsumer(configuration: configuration, logger: logger, metricsFactory: metricsFactory)
        if let topic = source.deadLetterTopic {
            var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: source.brokers)
            producerConfiguration.additionalProperties = properties.filter { !Self.consumerOnlyProperties.contains($0.key) }
            producerConfiguration.stopOnGracefulShutdown = false
            var producerLogger = logger
            producerLogger[metadataKey: "kafka.dead_letter_topic"] = "\(topic)"
            self.deadLetters = try KafkaProducer(configuration: producerConfiguration, logger: producerLogger, metricsFactory: metricsFactory)
        } else {
            self.deadLetters = nil
        }
        self.source = source
        self.sink = sink
        self.decoder = KafkaRecordDecoder(sourceName: source.name, format: source.format)
        self.logger = logger
        self.metrics = KafkaSourceMetrics(factory: metricsFactory, source: source.name)
    }

    static let consumerOnlyProperties: Set<String> = [
        "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "partition.assignment.strategy", "fetch.min.bytes", "fetch.max.bytes",
        "fetch.wait.max.ms", "queued.max.messages.kbytes", "queued.min.messages", "auto.commit.interval.ms", "enable.auto.commit", "group.instance.id",
        "isolation.level", "max.partition.fetch.bytes", "check.crcs",
    ]

    /// The consumer (tests look at its assignment).
    public var kafkaConsumer: KafkaConsumer { consumer }

    /// Reads until graceful shutdown; then stores the last batch, commits, leaves the group and returns.
    public func run() async throws {
        logger.info(
            "kafka source started",
            metadata: [
                "librdkafka": "\(KafkaLibrary.version)", "brokers": "\(source.brokers.joined(separator: ","))",
                "topics": "\(source.topicPattern ?? source.topics.joined(separator: ","))", "group": "\(source.groupID)", "format": "\(source.format.rawValue)",
                // Names only: values may be secrets.
                "properties": "\(source.properties.keys.sorted().joined(separator: ","))",
            ])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.consumer.run() }
            if let deadLetters { group.addTask { try await deadLetters.run() } }
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    await process()
                } onGracefulShutdown: {
                    self.stopping.store(true, ordering: .relaxed)
                }
            } onCancel: {
                self.stopping.store(true, ordering: .relaxed)
            }
            do {
                try await consumer.commit()
            } catch {
                logger.warning("the final offset commit failed; uncommitted records will be read again", metadata: ["error": "\(error)"])
            }
            consumer.triggerGracefulShutdown()
            deadLetters?.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        logger.info("kafka source stopped")
    }

    private func process() async {
        while !stopping.load(ordering: .relaxed) {
            let batch: [KafkaConsumerMessage]
            do {
                guard let next = try await consumer.nextBatch(maximum: source.batchSize, stop: { self.stopping.load(ordering: .relaxed) }) else {
                    return
                }
                batch = next
            } catch {
                logger.critical("the kafka consumer failed; the source stops reading until restarted", metadata: ["error": "\(error)"])
                return
            }
            if batch.isEmpty { continue }
            guard await handle(batch) else { return }
        }
    }

    /// Decodes, stores and acknowledges one batch.
    /// - Returns: `false` when shutdown interrupted it (its offsets are not stored: the records are read again).
    func handle(_ batch: [KafkaConsumerMessage]) async -> Bool {
        let received = Instant(seconds: Date().timeIntervalSince1970)
        var events: [Event] = []
        events.reserveCapacity(batch.count)
        for record in batch {
            switch decoder.events(from: record, received: received) {
            case .success(let decoded): events += decoded
            case .failure(let rejection):
                metrics.rejected(rejection.reason)
                logger.warning(
                    "kafka record rejected",
                    metadata: [
                        "topic": "\(record.topic)", "partition": "\(record.partition)", "offset": "\(record.offset)", "reason": "\(rejection.reason)",
                        "detail": "\(rejection.detail.prefix(300))",
                    ])
                events.append(rejectedEvent(record, rejection, received: received))
                if let deadLetters, let topic = source.deadLetterTopic {
                    guard await produceDeadLetter(record, rejection, topic: topic, producer: deadLetters) else { return false }
                }
            }
        }
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(50)
        while true {
            do {
                try await sink.ingest(events)
                break
            } catch {
                // Overloaded or a failed commit: nothing of the batch is acknowledged; try again.
                metrics.ingestRetries.increment()
                logger.warning("storing events from kafka failed; retrying", metadata: ["error": "\(error)", "events": "\(events.count)"])
                if stopping.load(ordering: .relaxed) { return false }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        let elapsed = ContinuousClock.now - started
        metrics.ingestLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        metrics.records.increment(by: batch.count)
        metrics.events.increment(by: events.count)
        // The events are durable: now the records count as processed.
        var positions: [KafkaTopicPartition: Int64] = [:]
        for record in batch { positions[record.topicPartition] = max(positions[record.topicPartition] ?? 0, record.offset + 1) }
        do {
            try consumer.storeOffsets(positions.map { KafkaTopicPartitionOffset(topicPartition: $0.key, nextOffset: $0.value) })
        } catch {
            logger.warning("storing offsets failed; the records will be read again", metadata: ["error": "\(error)"])
        }
        return true
    }

    /// The event that records a rejected record durably (and deduplicated, should the record be read again).
    func rejectedEvent(_ record: KafkaConsumerMessage, _ rejection: KafkaRejection, received: Instant) -> Event {
        var payload: [String: JSONValue] = [
            "topic": .string(record.topic), "partition": .int(Int64(record.partition.rawValue)), "offset": .int(record.offset),
            "reason": .string(rejection.reason), "detail": .string(String(rejection.detail.prefix(1000))),
            "value_size": record.value.map { .int(Int64($0.count)) } ?? .null, "format": .string(source.format.rawValue),
        ]
        if let key = record.key { payload["key"] = .string(Self.preview(key, limit: 200)) }
        if let value = record.value, !value.isEmpty { payload["value_preview"] = .string(Self.preview(value, limit: 500)) }
        return Event(
            id: UUID(name: "kafka-rejected:\(record.topic):\(record.partition.rawValue):\(record.offset)"), occurred: received,
            event: Self.rejectedEventName,
            resource: Resource([Resource.idLabel: "tripline.kafka-source.\(source.name)", Resource.nameLabel: source.name]),
            related: [Resource([Resource.idLabel: "kafka.topic.\(record.topic)", Resource.roleLabel: "topic"])], payload: payload, received: received)
    }

    /// The start of some bytes as text when they are UTF-8, otherwise as base64.
    static func preview(_ bytes: [UInt8], limit: Int) -> String {
        let head = Array(bytes.prefix(limit))
        if let text = String(validating: head, as: UTF8.self) { return text }
        return "base64:" + Data(head).base64EncodedString()
    }

    private func produceDeadLetter(_ record: KafkaConsumerMessage, _ rejection: KafkaRejection, topic: String, producer: KafkaProducer) async -> Bool {
        var headers =
            record.headers + [
                KafkaHeader(key: "tripline.rejected.reason", text: rejection.reason), KafkaHeader(key: "tripline.rejected.topic", text: record.topic),
                KafkaHeader(key: "tripline.rejected.partition", text: String(record.partition.rawValue)),
                KafkaHeader(key: "tripline.rejected.offset", text: String(record.offset)),
            ]
        var delay = Duration.milliseconds(100)
        var value = record.value
        while true {
            do {
                _ = try await producer.produce(topic: topic, key: record.key, value: value, headers: headers)
                metrics.deadLettered.increment()
                return true
            } catch let error as KafkaError where error.isPermanentForRecord {
                // The record can never be produced as it is (too large for the topic, say): send its position and
                // reason without the value; the rejected-record event in the log keeps the details either way.
                guard value != nil else {
                    logger.error("the record cannot be dead-lettered; it is recorded in the event log only", metadata: ["topic": "\(topic)", "error": "\(error)"])
                    return true
                }
                logger.warning("dead-lettering the record without its value", metadata: ["topic": "\(topic)", "error": "\(error)"])
                value = nil
                headers.append(KafkaHeader(key: "tripline.rejected.value_dropped", text: error.reason))
            } catch {
                logger.warning("producing to the dead-letter topic failed; retrying", metadata: ["topic": "\(topic)", "error": "\(error)"])
                if stopping.load(ordering: .relaxed) { return false }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

/// A Kafka source's metrics, labelled with its name.
struct KafkaSourceMetrics: Sendable {
    let factory: any MetricsFactory
    let source: String
    let records: Counter
    let events: Counter
    let deadLettered: Counter
    let ingestRetries: Counter
    let ingestLatency: CoreMetrics.Timer

    init(factory: any MetricsFactory, source: String) {
        self.factory = factory
        self.source = source
        let dimensions = [("source", source)]
        records = Counter(label: "tripline_kafka_source_records_total", dimensions: dimensions, factory: factory)
        events = Counter(label: "tripline_kafka_source_events_total", dimensions: dimensions, factory: factory)
        deadLettered = Counter(label: "tripline_kafka_source_dead_lettered_total", dimensions: dimensions, factory: factory)
        ingestRetries = Counter(label: "tripline_kafka_source_ingest_retries_total", dimensions: dimensions, factory: factory)
        ingestLatency = CoreMetrics.Timer(label: "tripline_kafka_source_ingest_seconds", dimensions: dimensions, factory: factory)
    }

    /// Counts a record rejected for `reason`.
    func rejected(_ reason: String) {
        Counter(label: "tripline_kafka_records_rejected_total", dimensions: [("source", source), ("reason", reason)], factory: factory).increment()
    }
}
