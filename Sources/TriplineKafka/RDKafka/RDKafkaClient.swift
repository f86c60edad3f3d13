internal import CRdKafka
internal import Dispatch
internal import Foundation
internal import Logging
import Synchronization

/// Owns one librdkafka client (`rd_kafka_t`) and its main event queue, and is the only place where they are created
/// and destroyed. Logs, errors, offset-commit results and delivery reports all arrive on the main queue
/// (`log.queue=true` and `rd_kafka_conf_set_events`), which ``serveEvents(timeoutMilliseconds:)`` drains.
///
/// - Important: The rebalance context is passed to librdkafka as the configuration's opaque pointer, unretained; it
///   is a stored property of this object, so it is released only after `deinit` has destroyed the `rd_kafka_t`.
final class RDKafkaClient: Sendable {
    enum Kind {
        case producer
        case consumer
    }

    let kind: Kind
    let handle: SendableOpaquePointer
    let mainQueue: SendableOpaquePointer
    let logger: Logger
    let rebalance: RDKafkaRebalanceContext?
    /// Commits awaiting their result, each retained once for librdkafka (see ``commit(_:)``).
    /// Keyed by the opaque pointer given to librdkafka: automatic commits carry the configuration's opaque (the
    /// rebalance context) instead, so only a pointer found here is a promise.
    let pendingCommits = Mutex<[UInt: RDKafkaCommitPromise]>([:])

    /// Serial queue for the consumer's blocking `rd_kafka_consumer_poll`; never the cooperative pool.
    let pollQueue: DispatchQueue
    /// Serial queue for blocking waits on the main event queue; never the cooperative pool.
    let eventQueue: DispatchQueue

    /// Creates a client.
    /// - Parameters:
    ///   - kind: Producer or consumer.
    ///   - properties: librdkafka properties.
    ///   - events: The `RD_KAFKA_EVENT_*` mask routed to the main queue.
    ///   - rebalance: For consumers, the context whose C callback assigns and revokes partitions.
    /// - Throws: A ``KafkaError`` when librdkafka refuses a property or cannot create the client.
    init(kind: Kind, properties: [String: String], events: Int32, rebalance: RDKafkaRebalanceContext?, logger: Logger) throws(KafkaError) {
        var properties = properties
        properties["log.queue"] = "true"
        let conf = try RDKafkaConfig.make(properties)
        rd_kafka_conf_set_events(conf, events)
        if let rebalance {
            // One opaque slot per configuration; only the rebalance callback reads it.
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(rebalance).toOpaque())
            rd_kafka_conf_set_rebalance_cb(conf, rdKafkaRebalanceCallback)
        }
        var message = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, &message, message.count) else {
            // rd_kafka_new takes the configuration only when it succeeds.
            rd_kafka_conf_destroy(conf)
            let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KafkaError(.client, "cannot create the Kafka \(kind == .producer ? "producer" : "consumer"): \(detail)")
        }
        guard let queue = rd_kafka_queue_get_main(handle) else {
            rd_kafka_destroy(handle)
            throw KafkaError(.client, "cannot get librdkafka's main queue")
        }
        rd_kafka_set_log_queue(handle, queue)
        self.kind = kind
        self.handle = SendableOpaquePointer(handle)
        self.mainQueue = SendableOpaquePointer(queue)
        self.rebalance = rebalance
        self.logger = logger
        let name = String(cString: rd_kafka_name(handle))
        self.pollQueue = DispatchQueue(label: "tripline.kafka.poll.\(name)")
        self.eventQueue = DispatchQueue(label: "tripline.kafka.events.\(name)")
    }

    deinit {
        // After a consumer has been closed (or for a producer) this returns quickly; it joins librdkafka's threads.
        rd_kafka_queue_destroy(mainQueue.pointer)
        rd_kafka_destroy(handle.pointer)
        // librdkafka is gone: no commit result can arrive any more, so the +1 retains handed to it are released.
        let leftover = pendingCommits.withLock { pending in
            let values = Array(pending.values)
            pending.removeAll()
            return values
        }
        for promise in leftover {
            promise.resume(.failure(KafkaError(.shutdown, "the consumer was destroyed before the commit completed")))
            Unmanaged.passUnretained(promise).release()
        }
    }

    /// The client's name (`rdkafka#consumer-1`), for logs.
    var name: String { String(cString: rd_kafka_name(handle.pointer)) }

    /// The error librdkafka raised as fatal, if it did.
    func fatalError() -> KafkaError? {
        var message = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle.pointer, &message, message.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(.fatal, String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), rdKafkaCode: code.rawValue)
    }

    // MARK: - Main queue

    /// A delivery report for the message produced with opaque `id`.
    struct Delivery {
        var id: UInt
        var result: Result<KafkaDeliveryReport, KafkaError>
    }

    /// Serves up to `limit` events of the main queue: logs are logged, errors logged (and returned), commit results
    /// complete their promises, rebalance events (during close) go to the rebalance context, and delivery reports are
    /// returned.
    /// - Parameter timeoutMilliseconds: How long to wait for the first event; 0 does not block.
    /// - Important: With a timeout above 0, call only from ``eventQueue``, never from the cooperative pool.
    func serveEvents(timeoutMilliseconds: Int32, limit: Int = 1000) -> (deliveries: [Delivery], errors: [KafkaError], served: Int) {
        var deliveries: [Delivery] = []
        var errors: [KafkaError] = []
        var served = 0
        var timeout = timeoutMilliseconds
        while served < limit, let event = rd_kafka_queue_poll(mainQueue.pointer, timeout) {
            defer { rd_kafka_event_destroy(event) }
            timeout = 0
            served += 1
            switch rd_kafka_event_type(event) {
            case RD_KAFKA_EVENT_LOG:
                log(event)
            case RD_KAFKA_EVENT_ERROR:
                let code = rd_kafka_event_error(event)
                let reason = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(code))
                let fatal = rd_kafka_event_error_is_fatal(event) != 0
                let error = KafkaError(fatal ? .fatal : (kind == .producer ? .producer : .consumer), reason, rdKafkaCode: code.rawValue)
                // Most errors are transient (a broker down, a timeout) and librdkafka retries by itself.
                if fatal { logger.error("librdkafka fatal error", metadata: ["error": "\(reason)"]) } else {
                    logger.warning("librdkafka error", metadata: ["error": "\(reason)"])
                }
                errors.append(error)
            case RD_KAFKA_EVENT_OFFSET_COMMIT:
                completeCommit(event)
            case RD_KAFKA_EVENT_REBALANCE:
                // During close the consumer group's rebalance events come here instead of to the callback.
                rebalance?.handle(handle.pointer, rd_kafka_event_error(event), rd_kafka_event_topic_partition_list(event))
            case RD_KAFKA_EVENT_DR:
                while let message = rd_kafka_event_message_next(event) {
                    // Messages of a delivery report belong to the event: they are not destroyed one by one.
                    deliveries.append(Delivery(id: UInt(bitPattern: message.pointee._private), result: Self.deliveryResult(message)))
                }
            default:
                break
            }
        }
        return (deliveries, errors, served)
    }

    static func deliveryResult(_ message: UnsafePointer<rd_kafka_message_t>) -> Result<KafkaDeliveryReport, KafkaError> {
        let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let error = message.pointee.err
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return .failure(KafkaError(.delivery, "delivery to \(topic) failed: \(String(cString: rd_kafka_err2str(error)))", rdKafkaCode: error.rawValue))
        }
        let offset = message.pointee.offset
        return .success(KafkaDeliveryReport(topic: topic, partition: KafkaPartition(rawValue: message.pointee.partition), offset: offset >= 0 ? offset : nil))
    }

    private func log(_ event: OpaquePointer) {
        var facility: UnsafePointer<CChar>?
        var text: UnsafePointer<CChar>?
        var level: Int32 = 0
        guard rd_kafka_event_log(event, &facility, &text, &level) == 0, let text else { return }
        let message = Logger.Message(stringLiteral: String(cString: text))
        let metadata: Logger.Metadata = [KafkaLoggingKeys.facility: "\(facility.map { String(cString: $0) } ?? "")", KafkaLoggingKeys.client: "\(name)"]
        // syslog levels
        switch level {
        case ...2: logger.critical(message, metadata: metadata)
        case 3: logger.error(message, metadata: metadata)
        case 4: logger.warning(message, metadata: metadata)
        case 5: logger.notice(message, metadata: metadata)
        case 6: logger.info(message, metadata: metadata)
        default: logger.debug(message, metadata: metadata)
        }
    }

    /// Waits up to `milliseconds` for main-queue events on ``eventQueue`` (off the cooperative pool) and serves them.
    func serveEventsWaiting(milliseconds: Int32) async -> (deliveries: [Delivery], errors: [KafkaError], served: Int) {
        // Try without blocking first: under load there is nearly always something to serve.
        let immediate = serveEvents(timeoutMilliseconds: 0)
        if immediate.served > 0 { return immediate }
        return await withCheckedContinuation { continuation in
            eventQueue.async { continuation.resume(returning: self.serveEvents(timeoutMilliseconds: milliseconds)) }
        }
    }

    // MARK: - Commits

    /// Fails every commit still waiting (the event loop that would answer them has ended). Their retains stay
    /// with `pendingCommits` until `deinit`, when librdkafka can no longer hand the promises back.
    func failPendingCommits() {
        let waiting = pendingCommits.withLock { Array($0.values) }
        for promise in waiting { promise.resume(.failure(KafkaError(.shutdown, "the consumer closed before the commit was answered"))) }
    }

    private func completeCommit(_ event: OpaquePointer) {
        let error = rd_kafka_event_error(event)
        guard let opaque = rd_kafka_event_opaque(event),
            pendingCommits.withLock({ $0.removeValue(forKey: UInt(bitPattern: opaque)) }) != nil
        else {
            // An automatic commit (interval or close): nobody waits for it.
            if error != RD_KAFKA_RESP_ERR_NO_ERROR, error != RD_KAFKA_RESP_ERR__NO_OFFSET {
                logger.warning("automatic offset commit failed", metadata: ["error": "\(String(cString: rd_kafka_err2str(error)))"])
            }
            return
        }
        // Balances the passRetained in `commit`.
        let promise = Unmanaged<RDKafkaCommitPromise>.fromOpaque(opaque).takeRetainedValue()
        if error == RD_KAFKA_RESP_ERR_NO_ERROR || error == RD_KAFKA_RESP_ERR__NO_OFFSET {
            promise.resume(.success(()))
        } else {
            promise.resume(.failure(KafkaError(.commit, "offset commit failed: \(String(cString: rd_kafka_err2str(error)))", rdKafkaCode: error.rawValue)))
        }
    }

    /// Commits `offsets` (or, when `nil`, every stored offset of the current assignment) and waits for the broker's
    /// answer, which the consumer's event loop delivers. Cancelling the waiting task stops the wait, not the commit.
    /// - Throws: A ``KafkaError`` with code `.commit` when the commit failed.
    func commit(_ offsets: [KafkaTopicPartitionOffset]?) async throws {
        let promise = RDKafkaCommitPromise()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                promise.setContinuation(continuation)
                let opaque = Unmanaged.passRetained(promise).toOpaque()
                pendingCommits.withLock { $0[UInt(bitPattern: opaque)] = promise }
                let result: rd_kafka_resp_err_t
                if let offsets {
                    let list = RDKafkaTopicPartitionList(offsets)
                    result = list.withPointer { rd_kafka_commit_queue(handle.pointer, $0, mainQueue.pointer, nil, opaque) }
                } else {
                    result = rd_kafka_commit_queue(handle.pointer, nil, mainQueue.pointer, nil, opaque)
                }
                if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                    // Refused at once: no result event will come, so the retain is given back here.
                    pendingCommits.withLock { _ = $0.removeValue(forKey: UInt(bitPattern: opaque)) }
                    Unmanaged<RDKafkaCommitPromise>.fromOpaque(opaque).release()
                    if result == RD_KAFKA_RESP_ERR__NO_OFFSET {
                        promise.resume(.success(()))
                    } else {
                        promise.resume(.failure(KafkaError(.commit, "offset commit refused: \(String(cString: rd_kafka_err2str(result)))", rdKafkaCode: result.rawValue)))
                    }
                }
            }
        } onCancel: {
            promise.resume(.failure(CancellationError()))
        }
    }
}

/// The result of one awaited commit, delivered exactly once whichever comes first: the broker's answer, an
/// immediate refusal, cancellation of the waiting task, or the client's end.
final class RDKafkaCommitPromise: Sendable {
    private enum State {
        case initial
        case waiting(CheckedContinuation<Void, any Error>)
        case completed(Result<Void, any Error>)
        case resumed
    }

    private let state = Mutex(State.initial)

    func setContinuation(_ continuation: CheckedContinuation<Void, any Error>) {
        let early = state.withLock { state -> Result<Void, any Error>? in
            switch state {
            case .initial:
                state = .waiting(continuation)
                return nil
            case .completed(let result):
                state = .resumed
                return result
            case .waiting, .resumed:
                Swift.fatalError("\(#function): a commit promise got a second continuation")
            }
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(_ result: Result<Void, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            switch state {
            case .initial:
                state = .completed(result)
                return nil
            case .waiting(let continuation):
                state = .resumed
                return continuation
            case .completed, .resumed:
                return nil
            }
        }
        waiting?.resume(with: result)
    }
}
