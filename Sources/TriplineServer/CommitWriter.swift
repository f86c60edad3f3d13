internal import CoreMetrics
internal import Foundation
internal import Logging
import Synchronization
internal import TriplineCore

/// The ingest writer: one thread that takes every submission waiting, stores and evaluates them in one
/// transaction, and resumes the submitters. Submitters only touch the queue under a mutex; everything else happens on
/// the writer thread, which may block on SQLite because it is not part of Swift concurrency's cooperative pool.
final class CommitWriter: Sendable {
    struct Pending {
        var events: [Event]
        /// The events' ``Event/storageText``, computed by the submitter so that the writer does not.
        var encoded: [String]
        /// Finished outbox entries recorded in the same transaction (the action layer's results).
        var outboxResults: [OutboxResult] = []
        var continuation: CheckedContinuation<EventPipeline.Outcome, any Error>
    }

    struct Queue {
        var pending: [Pending] = []
        /// A proactive tick to run in the next commit: the latest time asked for, and who waits for it.
        var tick: (now: Instant, waiters: [CheckedContinuation<Void, any Error>])?
        var count = 0
        var running = false
        var stopping = false
        /// Whether the writer is (about to be) waiting on `wake`; only then does a submission signal it, so that a
        /// busy writer is not woken once per request for nothing.
        var asleep = false
    }

    let store: any DurableStore
    let host: EventPipeline.EngineHost
    let metrics: ServerMetrics
    let logger: Logger
    let maximumPending: Int
    let queue = Mutex(Queue())
    /// Wakes the writer: one permit per submission, at most one outstanding wake-up matters.
    let wake = DispatchSemaphore(value: 0)
    let stopped = DispatchSemaphore(value: 0)
    /// Committed batches, in commit order, for the pipeline to publish to live feeds (see `PipelineService`).
    let results: AsyncStream<EventPipeline.BatchResult>
    private let resultsContinuation: AsyncStream<EventPipeline.BatchResult>.Continuation

    /// Signalled after a commit that recorded firings: their outbox entries are durable and can be dispatched.
    let outboxSignal: WakeSignal

    /// Whether commits evaluate the events (one process on SQLite) or only store them for the leader (shared store).
    let evaluates: Bool

    init(
        store: any DurableStore, host: EventPipeline.EngineHost, metrics: ServerMetrics, logger: Logger, maximumPending: Int,
        outboxSignal: WakeSignal, evaluates: Bool = true
    ) {
        self.evaluates = evaluates
        self.outboxSignal = outboxSignal
        self.store = store
        self.host = host
        self.metrics = metrics
        self.logger = logger
        self.maximumPending = maximumPending
        (results, resultsContinuation) = AsyncStream.makeStream(of: EventPipeline.BatchResult.self, bufferingPolicy: .unbounded)
    }

    /// Starts the writer thread.
    func start(pipeline: EventPipeline) {
        let started = queue.withLock { state -> Bool in
            if state.running { return false }
            state.running = true
            return true
        }
        guard started else { return }
        let thread = Thread { [self] in self.loop(pipeline: pipeline) }
        thread.name = "tripline-writer"
        thread.start()
    }

    /// Stops the writer once everything already submitted is committed; waits for it.
    func stop() {
        let (wasRunning, asleep) = queue.withLock { state -> (Bool, Bool) in
            state.stopping = true
            let asleep = state.asleep
            state.asleep = false
            return (state.running, asleep)
        }
        guard wasRunning else { return }
        if asleep { wake.signal() }
        stopped.wait()
    }

    func submit(_ events: [Event], outboxResults: [OutboxResult] = []) async throws -> EventPipeline.Outcome {
        // Serializing happens here, on the submitter's thread and in parallel with other requests, not on the writer.
        let encoded = events.map(\.storageText)
        return try await withCheckedThrowingContinuation { continuation in
            let error = queue.withLock { state -> TriplineError? in
                if state.stopping { return TriplineError(.limitExceeded, "the server is shutting down; retry against another instance or later") }
                if state.count + events.count > maximumPending {
                    return TriplineError(.limitExceeded, "the server is overloaded: \(state.count) events are waiting to be stored; retry later")
                }
                state.pending.append(Pending(events: events, encoded: encoded, outboxResults: outboxResults, continuation: continuation))
                state.count += events.count
                return nil
            }
            if let error {
                metrics.rejected("overloaded", count: events.count)
                continuation.resume(throwing: error)
                return
            }
            let shouldWake = queue.withLock { state -> Bool in
                guard state.asleep else { return false }
                state.asleep = false
                return true
            }
            if shouldWake { wake.signal() }
        }
    }

    /// Runs the engine's proactive evaluations due by `now` in the next commit (with whatever events it carries), and
    /// returns once that commit is durable (at once when the writer is stopping).
    func tick(now: Instant) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let (refused, shouldWake) = queue.withLock { state -> (Bool, Bool) in
                if state.stopping { return (true, false) }
                var tick = state.tick ?? (now, [])
                tick.now = max(tick.now, now)
                tick.waiters.append(continuation)
                state.tick = tick
                let asleep = state.asleep
                state.asleep = false
                return (false, asleep)
            }
            if refused {
                // Shutting down: the deadline is kept in the engine state and runs at the next start.
                continuation.resume()
                return
            }
            if shouldWake { wake.signal() }
        }
    }

    private func loop(pipeline: EventPipeline) {
        while true {
            let idle = queue.withLock { state -> Bool in
                if state.pending.isEmpty, state.tick == nil, !state.stopping {
                    state.asleep = true
                    return true
                }
                return false
            }
            if idle { wake.wait() }
            let (batch, tick, stop, waiting) = queue.withLock { state -> ([Pending], (now: Instant, waiters: [CheckedContinuation<Void, any Error>])?, Bool, Int) in
                let batch = state.pending
                let tick = state.tick
                let waiting = state.count
                state.pending = []
                state.tick = nil
                state.count = 0
                return (batch, tick, state.stopping, waiting)
            }
            // The queue depth the writer found: how far ingest runs ahead of commits.
            metrics.pendingEvents.record(waiting)
            if !batch.isEmpty || tick != nil { commit(batch, tick: tick, pipeline: pipeline) }
            if stop {
                // Anything that slipped in after the last take is refused by `submit`; nothing is left waiting.
                queue.withLock { $0.running = false }
                resultsContinuation.finish()
                stopped.signal()
                return
            }
        }
    }

    private func commit(
        _ batch: [Pending], tick: (now: Instant, waiters: [CheckedContinuation<Void, any Error>])?, pipeline: EventPipeline
    ) {
        let received = Instant(seconds: Date().timeIntervalSince1970)
        let groups = batch.map { (events: $0.events, encoded: $0.encoded) }
        let outboxResults = batch.flatMap(\.outboxResults)
        let started = DispatchTime.now().uptimeNanoseconds
        let tickTime = tick.map { min($0.now, received) }
        do {
            let result = try store.writeBlocking { transaction -> EventPipeline.BatchResult in
                if !outboxResults.isEmpty { try transaction.finishOutbox(outboxResults) }
                if !evaluates { return try EventPipeline.store(groups: groups, received: received, transaction: transaction).0 }
                return try host.state.withLock { state in
                    // Deadlines that passed before these events arrived run first.
                    var ticked = EventPipeline.BatchResult()
                    if let tickTime { ticked = try EventPipeline.advance(to: tickTime, state: &state, transaction: transaction, result: ticked) }
                    guard !groups.isEmpty else {
                        ticked.nextDeadline = .some(state.engine.nextDeadline)
                        return ticked
                    }
                    var result = try EventPipeline.evaluate(groups: groups, received: received, state: &state, transaction: transaction)
                    result.stored = ticked.stored + result.stored
                    result.firings = ticked.firings + result.firings
                    result.nextDeadline = .some(state.engine.nextDeadline)
                    return result
                }
            }
            for (item, outcome) in zip(batch, result.outcomes) { item.continuation.resume(returning: outcome) }
            for waiter in tick?.waiters ?? [] { waiter.resume() }
            metrics.commitLatency.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            metrics.eventsStored.increment(by: result.stored.count)
            metrics.eventsDuplicate.increment(by: result.duplicates)
            metrics.commits.increment()
            metrics.triggersEvaluated.increment(by: result.triggerEvaluations)
            metrics.evaluationLatency.recordNanoseconds(Int64(result.evaluationNanoseconds))
            if !result.firings.isEmpty {
                metrics.firings.increment(by: result.firings.count)
                outboxSignal.signal()
            }
            // Publishing to live feeds and waking the proactive timer happen on the pipeline, after the answers.
            resultsContinuation.yield(result)
        } catch {
            logger.error(
                "storing a batch of events failed; nothing of it was stored", metadata: ["error": "\(error)", "events": "\(groups.map(\.events.count).reduce(0, +))"])
            for item in batch { item.continuation.resume(throwing: error) }
            for waiter in tick?.waiters ?? [] { waiter.resume(throwing: error) }
            // The transaction rolled back but the in-memory engine may have moved on: reload it before going on. (With a
            // shared store the writer does not evaluate: there is nothing to reload.)
            guard evaluates else { return }
            let reloaded = DispatchSemaphore(value: 0)
            Task {
                await pipeline.recoverAfterFailedCommit()
                reloaded.signal()
            }
            reloaded.wait()
        }
    }
}
