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
    ///   - templates: Renders the mapping of format `raw`.
    ///   - environment: Where `env:` secret references are read.
    ///   - tuning: Changes to the consumer configuration (tests shorten timeouts).
    /// - Throws: A ``TriplineError`` naming a secret reference that cannot be read, or a `KafkaError` when librdkafka
    ///   refuses a property (named without its value).
    public init(
        source: KafkaSource, sink: any KafkaEventSink, logger: Logger, metricsFactory: any MetricsFactory, templates: (any TemplateRenderer)? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment, tuning: (inout KafkaConsumerConfiguration) -> Void = { _ in }
    ) throws {
        var logger = logger
        logger[metadataKey: KafkaLoggingKeys.source] = "\(source.name)"
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
            producerLogger[metadataKey: KafkaLoggingKeys.deadLetterTopic] = "\(topic)"
            self.deadLetters = try KafkaProducer(configuration: producerConfiguration, logger: producerLogger, metricsFactory: metricsFactory)
        } else {
            self.deadLetters = nil
        }
        self.source = source
        self.sink = sink
        self.decoder = KafkaRecordDecoder(sourceName: source.name, format: source.format, mapping: source.mapping, renderer: templates)
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

    /// Stops reading: the batches on their way are stored and acknowledged, the offsets committed, the group left,
    /// and ``run()`` returns. (Graceful shutdown does the same. Cancellation closes the consumer at once instead: the
    /// records of the last batches are then read again after a restart, and deduplicated.)
    public func triggerGracefulShutdown() {
        stopping.store(true, ordering: .relaxed)
    }

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
                // Bounded: with the brokers out of reach no answer may ever come, and shutdown must not hang on it.
                try await withThrowingTaskGroup(of: Void.self) { commits in
                    commits.addTask { try await self.consumer.commit() }
                    commits.addTask {
                        try await Task.sleep(for: Self.finalCommitTimeout)
                        throw KafkaError(.commit, "no answer to the final commit within \(Self.finalCommitTimeout)")
                    }
                    try await commits.next()
                    commits.cancelAll()
                }
            } catch {
                logger.warning("the final offset commit failed; uncommitted records will be read again", metadata: ["error": "\(error)"])
            }
            consumer.triggerGracefulShutdown()
            deadLetters?.triggerGracefulShutdown()
            try await group.waitForAll()
        }
        logger.info("kafka source stopped")
        // Stopped by a consumer failure rather than asked to: returning would end the whole server (a finished service
        // ends its group), so wait for the server's own shutdown; the rest of the server keeps running.
        if !stopping.load(ordering: .relaxed) {
            try? await gracefulShutdown()
        }
    }

    /// A decoded batch on its way into the log.
    struct Batch: Sendable {
        var records: Int
        var events: [Event]
        /// The next offset of each partition, stored once the events are durable.
        var positions: [KafkaTopicPartitionOffset]
    }

    /// How long shutdown waits for the broker to answer the final commit (the close commits once more).
    static let finalCommitTimeout = Duration.seconds(5)

    /// How many batches may be on their way into the log at once: the next batch is read and decoded while the
    /// previous one commits. Offsets are stored strictly in reading order, each after its own batch is durable.
    static let batchesInFlight = 2

    /// Set by a batch's store task when it is done, so that the reading loop can look without waiting.
    final class Completion: Sendable {
        let done = Atomic<Bool>(false)
    }

    private func process() async {
        // Tasks awaited in order below (never left behind): the log's commits of consecutive batches overlap.
        var inFlight: [(batch: Batch, stored: Task<Bool, Never>, completion: Completion)] = []
        reading: while !stopping.load(ordering: .relaxed) {
            // Acknowledge, in order, the batches already durable.
            while let oldest = inFlight.first, oldest.completion.done.load(ordering: .acquiring) {
                inFlight.removeFirst()
                guard await acknowledge(oldest.batch, stored: oldest.stored) else { break reading }
            }
            if inFlight.count >= Self.batchesInFlight {
                let oldest = inFlight.removeFirst()
                guard await acknowledge(oldest.batch, stored: oldest.stored) else { break }
                continue
            }
            let records: [KafkaConsumerMessage]
            // Waiting for records ends early when the oldest batch in flight becomes durable, so that an idle topic
            // does not hold its last offsets back.
            let oldestCompletion = inFlight.first?.completion
            do {
                guard
                    let next = try await consumer.nextBatch(
                        maximum: source.batchSize,
                        stop: { self.stopping.load(ordering: .relaxed) || oldestCompletion?.done.load(ordering: .acquiring) == true })
                else { break }
                records = next
            } catch {
                logger.critical("the kafka consumer failed; the source stops reading until restarted", metadata: ["error": "\(error)"])
                break
            }
            if records.isEmpty { continue }
            guard let batch = await prepare(records) else { break }
            let completion = Completion()
            inFlight.append(
                (
                    batch,
                    Task {
                        let stored = await self.store(batch.events)
                        completion.done.store(true, ordering: .releasing)
                        return stored
                    }, completion
                ))
        }
        // Finish what is on its way, in order; after a batch that could not be stored, nothing later is acknowledged.
        var acknowledging = true
        for item in inFlight {
            let stored = await item.stored.value
            if acknowledging { acknowledging = stored && acknowledge(item.batch) }
        }
        inFlight.removeAll()
    }

    /// Waits for `stored` and acknowledges the batch when its events are durable.
    private func acknowledge(_ batch: Batch, stored: Task<Bool, Never>) async -> Bool {
        guard await stored.value else { return false }
        return acknowledge(batch)
    }

    /// Decodes a batch; rejected records become rejected-record events (and dead letters).
    /// - Returns: `nil` when shutdown interrupted dead-lettering.
    func prepare(_ records: [KafkaConsumerMessage]) async -> Batch? {
        let received = Instant(seconds: Date().timeIntervalSince1970)
        var events: [Event] = []
        events.reserveCapacity(records.count)
        for record in records {
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
                    guard await produceDeadLetter(record, rejection, topic: topic, producer: deadLetters) else { return nil }
                }
            }
        }
        var positions: [KafkaTopicPartition: Int64] = [:]
        for record in records { positions[record.topicPartition] = max(positions[record.topicPartition] ?? 0, record.offset + 1) }
        return Batch(
            records: records.count, events: events,
            positions: positions.map { KafkaTopicPartitionOffset(topicPartition: $0.key, nextOffset: $0.value) })
    }

    /// Stores events durably, retrying with backoff until the log takes them.
    /// - Returns: `false` when shutdown came first.
    func store(_ events: [Event]) async -> Bool {
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
        return true
    }

    /// The batch's events are durable: its records count as processed.
    func acknowledge(_ batch: Batch) -> Bool {
        metrics.records.increment(by: batch.records)
        metrics.events.increment(by: batch.events.count)
        do {
            try consumer.storeOffsets(batch.positions)
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
