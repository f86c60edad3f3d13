internal import CRdKafka
internal import Foundation
public import Logging
public import CoreMetrics
public import ServiceLifecycle
import Synchronization

/// An idempotent producer (`acks=all`) over librdkafka whose ``produce(topic:partition:key:value:headers:)`` returns
/// once the broker confirmed the record. ``run()`` serves delivery reports; on graceful shutdown it stops taking
/// records, waits up to the flush timeout for the ones on their way, fails what is left, and returns.
public final class KafkaProducer: Service, Sendable {
    struct State {
        enum Phase { case running, flushing, stopped }
        var phase = Phase.running
        var nextID: UInt = 1
        var waiting: [UInt: CheckedContinuation<KafkaDeliveryReport, any Error>] = [:]
        var fatal: KafkaError?
    }

    let configuration: KafkaProducerConfiguration
    let client: RDKafkaClient
    let logger: Logger
    let state = Mutex(State())
    let delivered: Counter
    let failed: Counter
    let deliveryLatency: CoreMetrics.Timer

    /// Creates the producer; records are confirmed once ``run()`` runs.
    /// - Throws: A ``KafkaError`` when librdkafka refuses the configuration.
    public init(configuration: KafkaProducerConfiguration, logger: Logger, metricsFactory: any MetricsFactory) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        self.client = try RDKafkaClient(
            kind: .producer, properties: configuration.properties, events: RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_ERROR,
            rebalance: nil, logger: logger)
        delivered = Counter(label: "tripline_kafka_produced_total", factory: metricsFactory)
        failed = Counter(label: "tripline_kafka_produce_failures_total", factory: metricsFactory)
        deliveryLatency = CoreMetrics.Timer(label: "tripline_kafka_delivery_seconds", factory: metricsFactory)
    }

    /// Sends a record and waits until the broker has it (or delivery failed).
    /// - Parameters:
    ///   - topic: The topic.
    ///   - partition: A partition, or ``KafkaPartition/unassigned`` to let the key choose.
    ///   - key: The key, or `nil`.
    ///   - value: The value, or `nil` for a tombstone.
    ///   - headers: Record headers.
    /// - Returns: Where the record was written.
    /// - Throws: A ``KafkaError`` with code `.delivery` when the broker did not take the record within the delivery
    ///   timeout, `.producer` when librdkafka refused it, `.shutdown` once the producer is stopping.
    public func produce(
        topic: String, partition: KafkaPartition = .unassigned, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = []
    ) async throws -> KafkaDeliveryReport {
        let started = ContinuousClock.now
        let deadline = started + configuration.deliveryTimeout
        while true {
            do {
                let report = try await withCheckedThrowingContinuation { continuation in
                    enqueue(topic: topic, partition: partition, key: key, value: value, headers: headers, continuation: continuation)
                }
                delivered.increment()
                deliveryLatency.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
                return report
            } catch let error as KafkaError where error.rdKafkaCode == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue && ContinuousClock.now < deadline {
                // librdkafka's local queue is full: wait for deliveries to make room.
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                failed.increment()
                throw error
            }
        }
    }

    private func enqueue(
        topic: String, partition: KafkaPartition, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader],
        continuation: CheckedContinuation<KafkaDeliveryReport, any Error>
    ) {
        let admitted = state.withLock { state -> Result<UInt, KafkaError> in
            if let fatal = state.fatal { return .failure(fatal) }
            guard state.phase == .running else { return .failure(KafkaError(.shutdown, "the producer is shutting down")) }
            let id = state.nextID
            state.nextID += 1
            // Registered before librdkafka sees the record, so that its delivery report always finds the waiter.
            state.waiting[id] = continuation
            return .success(id)
        }
        let id: UInt
        switch admitted {
        case .failure(let error):
            continuation.resume(throwing: error)
            return
        case .success(let value): id = value
        }
        if let error = produceRecord(id: id, topic: topic, partition: partition, key: key, value: value, headers: headers) {
            if let waiter = state.withLock({ $0.waiting.removeValue(forKey: id) }) { waiter.resume(throwing: error) }
        }
    }

    /// Hands one record to librdkafka (copied: `RD_KAFKA_MSG_F_COPY`).
    /// - Returns: `nil` when librdkafka queued it, or why it refused.
    private func produceRecord(id: UInt, topic: String, partition: KafkaPartition, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader]) -> KafkaError? {
        // Every buffer below lives until the call returns; librdkafka copies what it keeps.
        var buffers: [UnsafeMutableRawPointer] = []
        defer { for buffer in buffers { buffer.deallocate() } }
        func copy(_ bytes: [UInt8]) -> UnsafeMutableRawPointer {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            bytes.withUnsafeBytes { if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: $0.count) } }
            buffers.append(buffer)
            return buffer
        }
        func cString(_ text: String) -> UnsafeMutablePointer<CChar> {
            let bytes = Array(text.utf8) + [0]
            return copy(bytes).assumingMemoryBound(to: CChar.self)
        }
        var arguments: [rd_kafka_vu_t] = []
        var argument = rd_kafka_vu_t()
        argument.vtype = RD_KAFKA_VTYPE_TOPIC
        argument.u.cstr = UnsafePointer(cString(topic))
        arguments.append(argument)
        argument = rd_kafka_vu_t()
        argument.vtype = RD_KAFKA_VTYPE_PARTITION
        argument.u.i32 = partition.rawValue
        arguments.append(argument)
        argument = rd_kafka_vu_t()
        argument.vtype = RD_KAFKA_VTYPE_MSGFLAGS
        argument.u.i = RD_KAFKA_MSG_F_COPY
        arguments.append(argument)
        if let key {
            argument = rd_kafka_vu_t()
            argument.vtype = RD_KAFKA_VTYPE_KEY
            argument.u.mem.ptr = copy(key)
            argument.u.mem.size = key.count
            arguments.append(argument)
        }
        argument = rd_kafka_vu_t()
        argument.vtype = RD_KAFKA_VTYPE_VALUE
        // A nil value is a tombstone.
        argument.u.mem.ptr = value.map(copy)
        argument.u.mem.size = value?.count ?? 0
        arguments.append(argument)
        argument = rd_kafka_vu_t()
        argument.vtype = RD_KAFKA_VTYPE_OPAQUE
        argument.u.ptr = UnsafeMutableRawPointer(bitPattern: id)
        arguments.append(argument)
        for header in headers {
            argument = rd_kafka_vu_t()
            argument.vtype = RD_KAFKA_VTYPE_HEADER
            argument.u.header.name = UnsafePointer(cString(header.key))
            argument.u.header.val = header.value.map { UnsafeRawPointer(copy($0)) }
            argument.u.header.size = header.value?.count ?? 0
            arguments.append(argument)
        }
        guard let error = rd_kafka_produceva(client.handle.pointer, arguments, arguments.count) else { return nil }
        // The error object is ours: destroyed here on every path.
        defer { rd_kafka_error_destroy(error) }
        let code = rd_kafka_error_code(error)
        return KafkaError(.producer, "cannot produce to \(topic): \(String(cString: rd_kafka_error_string(error)))", rdKafkaCode: code.rawValue)
    }

    /// Stops taking records; ``run()`` then flushes and returns.
    public func triggerGracefulShutdown() {
        state.withLock { state in
            if state.phase == .running { state.phase = .flushing }
        }
    }

    /// Serves delivery reports until graceful shutdown or cancellation, then flushes and returns.
    public func run() async throws {
        logger.info("kafka producer started", metadata: ["librdkafka": "\(KafkaLibrary.version)", "brokers": "\(configuration.bootstrapServers.joined(separator: ","))"])
        let interval = Int32(clamping: configuration.pollInterval.milliseconds)
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                while state.withLock({ $0.phase == .running }) {
                    deliver(await client.serveEventsWaiting(milliseconds: interval))
                }
            } onGracefulShutdown: {
                if self.configuration.stopOnGracefulShutdown { self.triggerGracefulShutdown() }
            }
        } onCancel: {
            self.triggerGracefulShutdown()
        }
        await flush()
        logger.info("kafka producer stopped")
    }

    private func flush() async {
        let deadline = ContinuousClock.now + configuration.flushTimeout
        while ContinuousClock.now < deadline {
            let waiting = state.withLock { $0.waiting.count }
            // rd_kafka_outq_len also counts records and events not yet served; zero means nothing is on its way.
            if waiting == 0, rd_kafka_outq_len(client.handle.pointer) == 0 { break }
            deliver(await client.serveEventsWaiting(milliseconds: 20))
        }
        if state.withLock({ !$0.waiting.isEmpty }) {
            logger.warning("flush timed out; purging records not yet delivered")
            _ = rd_kafka_purge(client.handle.pointer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING)
            let purgeDeadline = ContinuousClock.now + .seconds(1)
            while ContinuousClock.now < purgeDeadline, state.withLock({ !$0.waiting.isEmpty }) {
                deliver(await client.serveEventsWaiting(milliseconds: 20))
            }
        }
        let left = state.withLock { state in
            state.phase = .stopped
            let left = state.waiting
            state.waiting = [:]
            return left
        }
        for waiter in left.values { waiter.resume(throwing: KafkaError(.shutdown, "the producer stopped before the record was confirmed")) }
    }

    private func deliver(_ served: (deliveries: [RDKafkaClient.Delivery], errors: [KafkaError], served: Int)) {
        if let fatal = served.errors.first(where: { $0.code == .fatal }) {
            let waiting = state.withLock { state in
                state.fatal = fatal
                let waiting = state.waiting
                state.waiting = [:]
                return waiting
            }
            for waiter in waiting.values { waiter.resume(throwing: fatal) }
        }
        guard !served.deliveries.isEmpty else { return }
        let resumptions = state.withLock { state in
            served.deliveries.compactMap { delivery in state.waiting.removeValue(forKey: delivery.id).map { ($0, delivery.result) } }
        }
        for (waiter, result) in resumptions { waiter.resume(with: result.mapError { $0 as any Error }) }
    }
}
