internal import Logging
internal import ServiceLifecycle
import Synchronization
internal import TriplineCore

/// Records webhook deliveries off the request path: requests append to a buffer, and a service writes what has
/// accumulated at most every `interval` in one transaction, so that the history does not compete with event commits
/// for the database's write lock (one extra commit per delivery halved webhook throughput). A crash can lose the
/// records of the last moments (never the events, which are durable before any answer).
final class DeliveryRecorder: Service, Sendable {
    let log: any WebhookDeliveryLog
    let logger: Logger
    let maximumBuffered: Int
    let interval: Duration
    private let buffer = Mutex<[WebhookDelivery]>([])
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(log: any WebhookDeliveryLog, logger: Logger, maximumBuffered: Int = 10_000, interval: Duration = .milliseconds(250)) {
        self.log = log
        self.logger = logger
        self.maximumBuffered = maximumBuffered
        self.interval = interval
        (wakes, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a record.
    func record(_ delivery: WebhookDelivery) {
        let dropped = buffer.withLock { buffer -> Bool in
            guard buffer.count < maximumBuffered else { return true }
            buffer.append(delivery)
            return false
        }
        if dropped { logger.warning("webhook delivery history is behind; a record was dropped", metadata: ["slug": "\(delivery.slug)"]) }
        wake.yield()
    }

    /// The last flush; each flush waits for the one before it, so that batches are taken and committed in order
    /// (ids follow arrival) and a reader that flushed sees everything queued before it asked.
    private let tail = Mutex<Task<Void, Never>?>(nil)

    /// Writes everything queued so far (the API calls this before reading the history).
    func flush() async {
        let task = tail.withLock { tail -> Task<Void, Never> in
            let previous = tail
            let task = Task { [self] in
                await previous?.value
                await self.writeQueued()
            }
            tail = task
            return task
        }
        await task.value
    }

    private func writeQueued() async {
        let batch = buffer.withLock { buffer -> [WebhookDelivery] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        guard !batch.isEmpty else { return }
        do {
            try await log.recordDeliveries(batch)
        } catch {
            logger.error("cannot record webhook deliveries", metadata: ["count": "\(batch.count)", "error": "\(error)"])
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakes {
                // Gather what arrives meanwhile into the same transaction.
                try? await Task.sleep(for: interval)
                await flush()
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        await flush()
    }
}
