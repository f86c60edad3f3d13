public import CoreMetrics
internal import Dispatch
internal import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TriplineCore

/// Runs the actions in the outbox: claims due entries, runs each through the handler registered for its type,
/// records every attempt, retries with backoff, applies each destination's rate limit, and dead-letters what
/// cannot succeed. It wakes when new entries are committed (``WakeSignal``) and otherwise sleeps until the next
/// entry falls due; entries are never polled for on a fixed interval on the hot path.
///
/// Finished entries are recorded in groups (one transaction for everything that finished meanwhile), after their
/// `prefect.automation.action.*` events were handed to the event log. A crash before that record leaves the entry
/// pending, and it runs again after the restart with the same idempotency key (at least once).
public final class Dispatcher: Service, Sendable {
    /// Settings of the dispatcher.
    public struct Configuration: Sendable {
        /// The most entries being worked on at once.
        public var maximumInFlight = 256
        /// The most entries claimed at a time.
        public var claimBatch = 128
        /// The retry policy of actions without their own `retry`.
        public var retry = RetryPolicy()
        /// The longest sleep when nothing is due (a safety net; commits wake the dispatcher).
        public var idleWait: Duration = .seconds(30)
        /// Whether to emit `prefect.automation.action.*` events.
        public var emitActionEvents = true

        /// The defaults.
        public init() {}
    }

    struct Finished: Sendable {
        var result: OutboxResult
        var events: [Event]
    }

    struct State {
        var finished: [Finished] = []
        var inFlight = 0
        var stopping = false
    }

    let outbox: any Outbox
    let recorder: (any OutboxRecorder)?
    let handlers: ActionHandlers
    let environment: ActionEnvironment
    let configuration: Configuration
    let logger: Logger
    /// Signalled when new outbox entries were committed.
    public let wake: WakeSignal
    let flushWake = WakeSignal()
    let limiter = RateLimiter()
    let state = Mutex(State())
    let delivered: Counter
    let failedAttempts: Counter
    let deadLettered: Counter
    let attemptDuration: CoreMetrics.Timer

    /// Creates a dispatcher.
    /// - Parameters:
    ///   - outbox: The durable outbox.
    ///   - handlers: The handlers by action type.
    ///   - environment: What handlers use (templates, destinations, secrets, event sink).
    ///   - wake: Signalled by whoever commits new outbox entries.
    ///   - recorder: Records results together with their events in one transaction; without one, the events go to
    ///     the environment's event sink and the results to ``Outbox/finish(_:)``, one after the other.
    public init(
        outbox: any Outbox, handlers: ActionHandlers, environment: ActionEnvironment, wake: WakeSignal = WakeSignal(),
        recorder: (any OutboxRecorder)? = nil, configuration: Configuration = Configuration(), logger: Logger, metricsFactory: any MetricsFactory
    ) {
        self.outbox = outbox
        self.recorder = recorder
        self.handlers = handlers
        self.environment = environment
        self.wake = wake
        self.configuration = configuration
        self.logger = logger
        delivered = Counter(label: "tripline_actions_delivered_total", factory: metricsFactory)
        failedAttempts = Counter(label: "tripline_action_attempts_failed_total", factory: metricsFactory)
        deadLettered = Counter(label: "tripline_actions_dead_lettered_total", factory: metricsFactory)
        attemptDuration = CoreMetrics.Timer(label: "tripline_action_attempt_seconds", factory: metricsFactory)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.flushLoop() }
                await self.claimLoop(&group)
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.state.withLock { $0.stopping = true }
            self.wake.signal()
            self.flushWake.signal()
        }
    }

    /// Stops claiming; entries in flight finish and are recorded, then ``run()`` returns.
    public func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
        flushWake.signal()
    }

    // MARK: - Claiming

    private func claimLoop(_ group: inout TaskGroup<Void>) async {
        while true {
            // Cancellation (the service group ending because another service failed) stops claiming like a graceful
            // shutdown does; the flush loop then records what is in flight and ends.
            if Task.isCancelled { state.withLock { $0.stopping = true } }
            let (stopping, inFlight) = state.withLock { ($0.stopping, $0.inFlight) }
            if stopping { return }
            let capacity = min(configuration.maximumInFlight - inFlight, configuration.claimBatch)
            if capacity <= 0 {
                await wake.wait(timeout: .seconds(1))
                continue
            }
            let now = environment.clock()
            let entries: [OutboxEntry]
            do {
                entries = try await outbox.claim(limit: capacity, now: now)
            } catch {
                logger.error("claiming outbox entries failed", metadata: ["error": "\(error)"])
                await wake.wait(timeout: .seconds(1))
                continue
            }
            state.withLock { $0.inFlight += entries.count }
            var deferredPerKey: [String: Int] = [:]
            for entry in entries {
                if let until = rateLimitDelay(entry, now: now, deferred: &deferredPerKey) {
                    finished(Finished(result: OutboxResult(entryID: entry.id, attempt: nil, disposition: .deferred(until: until)), events: []))
                    continue
                }
                group.addTask { self.finished(await self.execute(entry)) }
            }
            if entries.count == capacity { continue }
            // Nothing more is due now: sleep until the next entry is due, new entries are committed, or a flush
            // frees capacity.
            let next = (try? await outbox.nextDue()) ?? nil
            let idle = Int64(configuration.idleWait.components.seconds) * 1_000_000
            let wait = next.map { min(max(0, $0.microseconds - environment.clock().microseconds), idle) } ?? idle
            if wait > 0 { await wake.wait(timeout: .microseconds(wait)) }
        }
    }

    /// When the entry's destination has no token left: the time it should be tried instead. Entries deferred in one
    /// round are spread one token interval apart, so that they do not all wake at once.
    private func rateLimitDelay(_ entry: OutboxEntry, now: Instant, deferred: inout [String: Int]) -> Instant? {
        guard let name = entry.action.fields["destination"]?.stringValue, let destination = environment.destinations.destination(named: name),
            let limit = destination.effectiveRateLimit
        else { return nil }
        guard let next = limiter.acquire(name, limit: limit, now: now) else { return nil }
        let position = deferred[name, default: 0]
        deferred[name] = position + 1
        return next + RateLimiter.interval(limit) * Int64(position)
    }

    // MARK: - Running one entry

    func execute(_ entry: OutboxEntry) async -> Finished {
        let attempt = entry.attempts + 1
        let started = environment.clock()
        let clockStart = DispatchTime.now().uptimeNanoseconds
        let policy = configuration.retry.overridden(by: entry.action.fields["retry"])
        var outcome: Result<ActionSuccess, ActionFailure>
        if let handler = handlers.handler(for: entry.action.type) {
            do {
                outcome = .success(try await handler.run(ActionExecution(entry: entry, attempt: attempt, environment: environment)))
            } catch let failure as ActionFailure {
                outcome = .failure(failure)
            } catch {
                outcome = .failure(ActionFailure(.retriable, "unexpected error: \(type(of: error))"))
            }
        } else {
            outcome = .failure(.configuration("no handler runs actions of type \"\(entry.action.type)\" (known: \(handlers.types.joined(separator: ", ")))"))
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - clockStart
        attemptDuration.recordNanoseconds(Int64(elapsed))
        let duration = TimeSpan(microseconds: Int64(elapsed / 1000))
        let record: DeliveryAttempt
        let disposition: OutboxDisposition
        switch outcome {
        case .success(let success):
            record = DeliveryAttempt(number: attempt, started: started, duration: duration, outcome: .success, statusCode: success.statusCode)
            disposition = .delivered
            delivered.increment()
        case .failure(let failure):
            failedAttempts.increment()
            let counted = attempt - entry.attemptBase
            if failure.kind == .retriable, counted < policy.maximumAttempts {
                let delay = policy.delay(after: counted, retryAfter: failure.retryAfter, random: Double.random(in: 0..<1))
                record = DeliveryAttempt(
                    number: attempt, started: started, duration: duration, outcome: .retry, statusCode: failure.statusCode, error: failure.reason)
                disposition = .retry(at: environment.clock() + delay)
            } else {
                record = DeliveryAttempt(
                    number: attempt, started: started, duration: duration, outcome: .failure, statusCode: failure.statusCode, error: failure.reason)
                let reason = failure.kind == .retriable ? "gave up after \(counted) attempts: \(failure.reason)" : failure.reason
                disposition = .dead(reason: reason)
                deadLettered.increment()
                logger.warning(
                    "action dead-lettered",
                    metadata: [
                        "delivery": "\(entry.id)", "automation": "\(entry.automationName)", "action": "\(entry.action.type)", "reason": "\(reason)",
                    ])
            }
        }
        let events = configuration.emitActionEvents ? ActionEvents.events(for: entry, attempt: record, outcome: outcome, now: environment.clock()) : []
        return Finished(result: OutboxResult(entryID: entry.id, attempt: record, disposition: disposition), events: events)
    }

    // MARK: - Recording

    private func finished(_ item: Finished) {
        state.withLock { $0.finished.append(item) }
        flushWake.signal()
    }

    private func flushLoop() async {
        while true {
            let (batch, done) = state.withLock { state -> ([Finished], Bool) in
                let batch = state.finished
                state.finished = []
                return (batch, state.stopping && state.inFlight == 0)
            }
            if batch.isEmpty {
                if done { return }
                await flushWake.wait(timeout: .seconds(1))
                continue
            }
            let events = batch.flatMap(\.events)
            if let recorder {
                do {
                    try await recorder.record(batch.map(\.result), events: events)
                } catch {
                    // The entries stay pending in the database and run again (same idempotency key).
                    logger.error("recording action results failed; the entries will run again", metadata: ["error": "\(error)"])
                }
            } else {
                await emitThenFinish(batch.map(\.result), events: events)
            }
            state.withLock { $0.inFlight -= batch.count }
            wake.signal()
        }
    }

    private func emitThenFinish(_ results: [OutboxResult], events: [Event]) async {
        do {
            if !events.isEmpty {
                do {
                    try await environment.events.emit(events)
                } catch {
                    logger.warning("action events could not be stored", metadata: ["error": "\(error)", "events": "\(events.count)"])
                }
            }
            try await outbox.finish(results)
        } catch {
            // The entries stay pending in the database and run again (same idempotency key).
            logger.error("recording action results failed; the entries will run again", metadata: ["error": "\(error)"])
        }
    }
}
