internal import Foundation
internal import Logging
internal import ServiceLifecycle
internal import TriplineCore

/// The current wall-clock time.
func wallClock() -> Instant { Instant(seconds: Date().timeIntervalSince1970) }

/// Runs proactive evaluations when they fall due: sleeps until the engine's next deadline (not on a fixed polling
/// interval) and wakes early when new events or new rules may have brought a deadline forward.
struct ProactiveScheduler: Service {
    let pipeline: EventPipeline
    let logger: Logger

    func run() async throws {
        // Graceful shutdown cancels the loop; ending that way is a clean stop, not a failure of the service group.
        try await ignoringCancellation { await cancelWhenGracefulShutdown {
            // The first evaluation schedules every proactive trigger.
            await pipeline.tick(now: wallClock())
            while !Task.isCancelled {
                let now = wallClock()
                let (deadline, generation) = await pipeline.scheduleNextDeadline()
                if let deadline {
                    if deadline <= now {
                        await pipeline.tick(now: now)
                        continue
                    }
                    let wait = min(deadline.microseconds - now.microseconds, 60_000_000)
                    await pipeline.waitForDeadlineChange(after: generation, timeout: .microseconds(wait))
                } else {
                    await pipeline.waitForDeadlineChange(after: generation, timeout: .seconds(60))
                }
            }
        } }
    }
}

/// Reloads the rules folder on SIGHUP and when its files change (checked every `interval`); an invalid folder
/// keeps the running rules.
struct RulesWatcher: Service {
    let catalog: AutomationCatalog
    let webhooks: WebhookCatalog
    let interval: TimeSpan
    let logger: Logger

    func run() async throws {
        let hangups = AsyncStream<Void> { continuation in
            signal(SIGHUP, SIG_IGN)
            // Only resumed here and cancelled on termination; DispatchSource is thread-safe for both.
            nonisolated(unsafe) let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            continuation.onTermination = { _ in source.cancel() }
        }
        // Graceful shutdown cancels the loop; ending that way is a clean stop, not a failure of the service group.
        try await ignoringCancellation { try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in hangups {
                        logger.info("SIGHUP: reloading rules")
                        await catalog.reloadIfChanged(force: true)
                        webhooks.reload(force: true)
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: .microseconds(interval.microseconds))
                        await catalog.reloadIfChanged()
                        webhooks.reload()
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        } }
    }
}

/// Deletes events older than the retention period, at start and then hourly, in small batches so that ingest is
/// never blocked for long.
struct RetentionService: Service {
    let store: any DurableStore
    let deliveries: any WebhookDeliveryLog
    let retention: TimeSpan
    let logger: Logger

    func run() async throws {
        // Graceful shutdown cancels the loop; ending that way is a clean stop, not a failure of the service group.
        try await ignoringCancellation { try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var deleted = 0
                let cutoff = wallClock() - retention
                do {
                    while !Task.isCancelled {
                        let batch = try await store.deleteEvents(receivedBefore: cutoff, limit: 5_000)
                        deleted += batch
                        if batch < 5_000 { break }
                    }
                    if deleted > 0 { logger.info("retention: deleted old events", metadata: ["events": "\(deleted)", "before": "\(cutoff)"]) }
                    var deliveriesDeleted = 0
                    while !Task.isCancelled {
                        let batch = try await deliveries.deleteDeliveries(receivedBefore: cutoff, limit: 5_000)
                        deliveriesDeleted += batch
                        if batch < 5_000 { break }
                    }
                    if deliveriesDeleted > 0 { logger.info("retention: deleted old webhook deliveries", metadata: ["deliveries": "\(deliveriesDeleted)"]) }
                } catch {
                    logger.error("retention failed", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: .seconds(3600))
            }
        } }
    }
}

/// Owns the ingest writer's lifetime: hands every committed batch to the pipeline (live feeds, proactive timer) in
/// commit order, and on graceful shutdown lets the writer commit what was already submitted, then ends the live
/// feeds so that open websockets do not hold the shutdown up.
struct PipelineService: Service {
    let pipeline: EventPipeline

    func run() async throws {
        await withGracefulShutdownHandler {
            for await result in pipeline.writer.results { await pipeline.committed(result) }
        } onGracefulShutdown: {
            // Blocks until the writer has committed what was submitted; run off the cooperative pool.
            Thread.detachNewThread { pipeline.stopWriter() }
        }
        await pipeline.finishSubscribers()
    }
}

/// Runs `body`; a `CancellationError` (the way graceful shutdown ends a loop) is a normal return.
func ignoringCancellation(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch is CancellationError {
    }
}
