internal import CRdKafka
internal import Dispatch
internal import Foundation
public import Logging
public import CoreMetrics
public import ServiceLifecycle
import Synchronization

/// A consumer-group member over librdkafka. Records come from ``messages`` (pulled lazily, so librdkafka's bounded
/// prefetch queue is the back-pressure); ``run()`` serves librdkafka's events (logs, errors, commit results) and,
/// on graceful shutdown or cancellation, closes the consumer without blocking and returns once the group is left.
///
/// At-least-once use: read a record, process it, then ``storeOffset(_:)``; stored offsets are committed in the
/// background and on close, and ``commit()`` commits them at once and waits for the broker.
public final class KafkaConsumer: Service, Sendable {
    let configuration: KafkaConsumerConfiguration
    let client: RDKafkaClient
    let rebalance: RDKafkaRebalanceContext
    let logger: Logger
    let metrics: KafkaConsumerMetrics
    let state = Mutex(StateMachine())
    /// Records handed out, for the throughput gauge.
    let handedOut = Atomic<Int>(0)
    /// The next offset to process of each partition, as last stored, for the lag gauges.
    let storedPositions = Mutex<[KafkaTopicPartition: Int64]>([:])

    /// Creates the consumer and subscribes; records flow once ``messages`` is iterated.
    /// - Parameters:
    ///   - configuration: Brokers, group, subscription and librdkafka properties.
    ///   - logger: Receives librdkafka's logs and the consumer's own.
    ///   - metricsFactory: Where lag, throughput and commit latency go.
    /// - Throws: A ``KafkaError`` when librdkafka refuses the configuration or the subscription.
    public init(configuration: KafkaConsumerConfiguration, logger: Logger, metricsFactory: any MetricsFactory) throws(KafkaError) {
        var logger = logger
        logger[metadataKey: KafkaLoggingKeys.group] = "\(configuration.groupID)"
        let rebalance = RDKafkaRebalanceContext(logger: logger)
        let client = try RDKafkaClient(
            kind: .consumer, properties: configuration.properties, events: RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_OFFSET_COMMIT,
            rebalance: rebalance, logger: logger)
        let topics: [String]
        switch configuration.subscription {
        case .topics(let names): topics = names
        // librdkafka treats a subscription starting with ^ as a regular expression.
        case .pattern(let pattern): topics = [pattern.hasPrefix("^") ? pattern : "^" + pattern]
        }
        let list = RDKafkaTopicPartitionList(topics: topics)
        let result = list.withPointer { rd_kafka_subscribe(client.handle.pointer, $0) }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.consumer, "cannot subscribe to \(topics): \(String(cString: rd_kafka_err2str(result)))", rdKafkaCode: result.rawValue)
        }
        self.configuration = configuration
        self.client = client
        self.rebalance = rebalance
        self.logger = logger
        self.metrics = KafkaConsumerMetrics(factory: metricsFactory, group: configuration.groupID)
    }

    /// The records of the subscription, in partition order. The sequence ends when the consumer closes. Dropping its
    /// iterator closes the consumer (and leaves the group) instead of leaving partitions stalled.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(consumer: self) }

    /// The partitions currently assigned to this consumer.
    public var assignment: Set<KafkaTopicPartition> { rebalance.assignment }

    // MARK: - Offsets

    /// Marks `message` as processed: its successor is the position the group continues from after the next commit.
    /// - Throws: A ``KafkaError`` when librdkafka refuses; a partition no longer assigned (revoked by a rebalance) is
    ///   not an error, its new owner reads the record again.
    public func storeOffset(_ message: KafkaConsumerMessage) throws(KafkaError) {
        try storeOffsets([KafkaTopicPartitionOffset(after: message)])
    }

    /// Marks positions as processed (see ``storeOffset(_:)``).
    public func storeOffsets(_ positions: [KafkaTopicPartitionOffset]) throws(KafkaError) {
        guard !positions.isEmpty else { return }
        let list = RDKafkaTopicPartitionList(positions)
        let result = list.withPointer { rd_kafka_offsets_store(client.handle.pointer, $0) }
        let elementErrors = list.elementErrors()
        let refused = Set(elementErrors.map(\.0))
        storedPositions.withLock { stored in
            for position in positions where !refused.contains(position.topicPartition) {
                stored[position.topicPartition] = max(stored[position.topicPartition] ?? 0, position.nextOffset)
            }
        }
        // Not assigned any more (revoked by a rebalance): the new owner reads the records again, which is no error.
        if let (partition, code) = elementErrors.first(where: { $0.1 != RD_KAFKA_RESP_ERR__STATE }) {
            throw KafkaError(.consumer, "cannot store the offset of \(partition): \(String(cString: rd_kafka_err2str(code)))", rdKafkaCode: code.rawValue)
        }
        if result != RD_KAFKA_RESP_ERR_NO_ERROR, result != RD_KAFKA_RESP_ERR__STATE, elementErrors.isEmpty {
            throw KafkaError(.consumer, "cannot store offsets: \(String(cString: rd_kafka_err2str(result)))", rdKafkaCode: result.rawValue)
        }
    }

    /// Commits every stored offset now and waits for the broker's answer. Needs ``run()`` to be running (it delivers
    /// the answer).
    /// - Throws: A ``KafkaError`` with code `.commit` when the broker refused; `CancellationError` when the waiting
    ///   task is cancelled (the commit itself still happens).
    public func commit() async throws {
        // The answer is delivered by the event loop, which ends with the close: a later commit would wait forever.
        guard state.withLock({ $0.mayCommit }) else { throw KafkaError(.shutdown, "the consumer is closing or closed; nothing more is committed") }
        let started = ContinuousClock.now
        try await client.commit(nil)
        metrics.commitLatency.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
    }

    // MARK: - Lifecycle

    /// Starts closing: records stop flowing, stored offsets are committed, the group is left. ``run()`` returns once
    /// that is done. Safe to call from anywhere, any number of times.
    public func triggerGracefulShutdown() {
        state.withLock { $0.requestClose(byOwner: true) }?.resume()
    }

    /// Serves librdkafka's events until the consumer is closed, then returns (after graceful shutdown, cancellation
    /// or ``triggerGracefulShutdown()``).
    public func run() async throws {
        state.withLock { $0.start() }
        logger.info(
            "kafka consumer started",
            metadata: [
                "librdkafka": "\(KafkaLibrary.version)", "brokers": "\(configuration.bootstrapServers.joined(separator: ","))",
                "subscription": "\(configuration.subscription)",
            ])
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await eventLoop()
            } onGracefulShutdown: {
                if self.configuration.closeOnGracefulShutdown { self.triggerGracefulShutdown() }
            }
        } onCancel: {
            self.triggerGracefulShutdown()
        }
        // Closed because the messages iterator went away: the service keeps running until it is told to stop.
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            if state.withLock({ $0.awaitStop(waiter) }) == .returnNow { waiter.resume() }
        }
        client.failPendingCommits()
        logger.info("kafka consumer stopped")
    }

    private func eventLoop() async {
        let interval = Int32(clamping: configuration.pollInterval.milliseconds)
        var lastMetrics = ContinuousClock.now
        var closeDeadline = ContinuousClock.now
        while true {
            switch state.withLock({ $0.closeTurn() }) {
            case .nothing:
                let served = await client.serveEventsWaiting(milliseconds: interval)
                if served.errors.contains(where: { $0.code == .fatal }) { triggerGracefulShutdown() }
                if ContinuousClock.now - lastMetrics >= configuration.metricsInterval {
                    updateMetrics(elapsed: ContinuousClock.now - lastMetrics)
                    lastMetrics = ContinuousClock.now
                }
            case .startClosing:
                logger.info("closing the kafka consumer: committing stored offsets and leaving the group")
                closeDeadline = ContinuousClock.now + configuration.closeTimeout
                // Non-blocking: the close proceeds on librdkafka's threads and reports through the main queue, which
                // this loop keeps serving (rebalance events included) until the consumer says it is closed.
                if let error = rd_kafka_consumer_close_queue(client.handle.pointer, client.mainQueue.pointer) {
                    logger.error("closing the consumer failed", metadata: ["error": "\(String(cString: rd_kafka_error_string(error)))"])
                    rd_kafka_error_destroy(error)
                    state.withLock { $0.closed() }
                    return
                }
            case .keepWaiting:
                if rd_kafka_consumer_closed(client.handle.pointer) != 0 {
                    _ = client.serveEvents(timeoutMilliseconds: 0)
                    state.withLock { $0.closed() }
                    forgetLagGauges(rebalance.assignment.union(rebalance.takeRevoked()))
                    return
                }
                if ContinuousClock.now >= closeDeadline {
                    logger.error("the kafka consumer did not close in time; giving up on leaving the group cleanly")
                    state.withLock { $0.closed() }
                    return
                }
                _ = await client.serveEventsWaiting(milliseconds: 20)
            }
        }
    }

    // MARK: - Records

    /// The next record, or `nil` once the consumer closes or the task is cancelled.
    func nextMessage() async throws -> KafkaConsumerMessage? {
        let timeout = Int32(clamping: configuration.pollInterval.milliseconds)
        while state.withLock({ $0.mayPoll }), !Task.isCancelled {
            // A non-blocking poll first; only when nothing is buffered, a poll bounded by `pollInterval` on the
            // consumer's own serial queue, off the cooperative pool.
            if let message = try poll(timeoutMilliseconds: 0) { return message }
            let client = self.client
            let result: Result<KafkaConsumerMessage?, KafkaError> = await withCheckedContinuation { continuation in
                client.pollQueue.async { continuation.resume(returning: Result { () throws(KafkaError) in try self.poll(timeoutMilliseconds: timeout) }) }
            }
            if let message = try result.get() { return message }
        }
        return nil
    }

    /// Up to `maximum` records: waits for the first (looking at `stop` every poll interval), then takes only what is
    /// already buffered. For owners that process records in batches and run the consumer's lifecycle themselves.
    /// - Returns: `nil` once the consumer is closed (or closing); an empty batch when `stop` became true first.
    /// - Throws: A ``KafkaError`` with code `.fatal` when librdkafka raised a fatal error.
    public func nextBatch(maximum: Int, stop: @Sendable () -> Bool) async throws -> [KafkaConsumerMessage]? {
        let timeout = Int32(clamping: configuration.pollInterval.milliseconds)
        var batch: [KafkaConsumerMessage] = []
        while batch.isEmpty {
            guard state.withLock({ $0.mayPoll }) else { return nil }
            if stop() || Task.isCancelled { return [] }
            if let message = try poll(timeoutMilliseconds: 0) {
                batch.append(message)
                break
            }
            let client = self.client
            let result: Result<KafkaConsumerMessage?, KafkaError> = await withCheckedContinuation { continuation in
                // Blocking poll bounded by `pollInterval`, on the consumer's serial queue, off the cooperative pool.
                client.pollQueue.async { continuation.resume(returning: Result { () throws(KafkaError) in try self.poll(timeoutMilliseconds: timeout) }) }
            }
            if let message = try result.get() { batch.append(message) }
        }
        while batch.count < maximum, state.withLock({ $0.mayPoll }), let message = try poll(timeoutMilliseconds: 0) { batch.append(message) }
        return batch
    }

    /// Polls the consumer once, copying the record out of librdkafka's buffers.
    /// - Important: With a timeout above 0, call only from ``RDKafkaClient/pollQueue``.
    private func poll(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaConsumerMessage? {
        guard let message = rd_kafka_consumer_poll(client.handle.pointer, timeoutMilliseconds) else { return nil }
        // Every polled message is destroyed, or librdkafka's queue stays blocked.
        defer { rd_kafka_message_destroy(message) }
        let error = message.pointee.err
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            if error == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
            if error == RD_KAFKA_RESP_ERR__FATAL, let fatal = client.fatalError() { throw fatal }
            metrics.errors.increment()
            let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
            logger.warning(
                "kafka consumer error", metadata: ["topic": "\(topic)", "error": "\(String(cString: rd_kafka_err2str(error)))"])
            return nil
        }
        handedOut.add(1, ordering: .relaxed)
        metrics.messages.increment()
        return Self.copy(message)
    }

    static func copy(_ message: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaConsumerMessage {
        let record = message.pointee
        let topic = record.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let key = record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) }
        let value = record.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: record.len)) }
        var headers: [KafkaHeader] = []
        var list: OpaquePointer?
        // The headers belong to the message: they are not destroyed separately.
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var bytes: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let headerValue = bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(key: name.map { String(cString: $0) } ?? "", value: headerValue))
                index += 1
            }
        }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(message, &type)
        let timestamp = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || milliseconds < 0 ? nil : Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        return KafkaConsumerMessage(
            topic: topic, partition: KafkaPartition(rawValue: record.partition), offset: record.offset, key: key, value: value, headers: headers,
            timestamp: timestamp)
    }

    /// The messages iterator went away: close, as nobody reads the assigned partitions any more.
    func iteratorDropped() {
        state.withLock { $0.requestClose(byOwner: false) }?.resume()
    }

    // MARK: - Metrics

    private func updateMetrics(elapsed: Duration) {
        let count = handedOut.exchange(0, ordering: .relaxed)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if seconds > 0 { metrics.messagesPerSecond.record(Double(count) / seconds) }
        forgetLagGauges(rebalance.takeRevoked())
        let stored = storedPositions.withLock { $0 }
        for partition in rebalance.assignment {
            var low: Int64 = -1
            var high: Int64 = -1
            // Cached by librdkafka from fetch responses: no request, no blocking.
            guard rd_kafka_get_watermark_offsets(client.handle.pointer, partition.topic, partition.partition.rawValue, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                high >= 0
            else { continue }
            let next = stored[partition] ?? position(partition) ?? low
            metrics.lag(partition).record(max(0, high - next))
        }
    }

    /// The consumer's fetch position in `partition`, when it has one.
    private func position(_ partition: KafkaTopicPartition) -> Int64? {
        let list = RDKafkaTopicPartitionList([KafkaTopicPartitionOffset(topicPartition: partition, nextOffset: -1)])
        _ = list.withPointer { rd_kafka_position(client.handle.pointer, $0) }
        let offset = list.withPointer { RDKafkaTopicPartitionList.elements($0).first?.offset } ?? -1
        return offset >= 0 ? offset : nil
    }

    private func forgetLagGauges(_ partitions: Set<KafkaTopicPartition>) {
        for partition in partitions {
            metrics.lag(partition).destroy()
            storedPositions.withLock { _ = $0.removeValue(forKey: partition) }
        }
    }
}

/// The records of a ``KafkaConsumer``'s subscription (see ``KafkaConsumer/messages``).
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerMessage
    let consumer: KafkaConsumer

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(lifetime: Lifetime(consumer: consumer)) }

    /// Closes the consumer when the last copy of an iterator goes away; no C call happens here, the consumer's
    /// event loop does the closing.
    final class Lifetime: Sendable {
        let consumer: KafkaConsumer
        init(consumer: KafkaConsumer) { self.consumer = consumer }
        deinit { consumer.iteratorDropped() }
    }

    /// Pulls one record at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let lifetime: Lifetime

        public mutating func next() async throws -> KafkaConsumerMessage? {
            try await lifetime.consumer.nextMessage()
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
