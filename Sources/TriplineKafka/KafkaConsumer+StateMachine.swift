extension KafkaConsumer {
    /// The consumer's lifecycle, without IO: `initial -> running -> closeRequested -> closing -> closed`, plus whether
    /// the owner asked to stop (graceful shutdown, cancellation or ``KafkaConsumer/triggerGracefulShutdown()``), which
    /// decides whether `run()` may return once closed. Side effects happen outside the lock on the returned actions.
    struct StateMachine {
        enum Phase: Equatable {
            /// Created; `run()` has not started. Records may already be read.
            case initial
            /// `run()` serves the event queue.
            case running
            /// Close was asked for; the next turn of the loop starts it.
            case closeRequested
            /// `rd_kafka_consumer_close_queue` was called; waiting for the group to be left.
            case closing
            /// The group is left; nothing more is read.
            case closed
        }

        private(set) var phase: Phase = .initial
        /// Whether the owner asked to stop: then `run()` returns as soon as the consumer is closed. Without it (the
        /// messages iterator was dropped) `run()` closes the consumer but waits for graceful shutdown.
        private(set) var stopRequested = false
        private var stopWaiter: CheckedContinuation<Void, Never>?

        /// `run()` starts.
        mutating func start() {
            switch phase {
            case .initial: phase = .running
            case .closeRequested: break
            case .running, .closing, .closed: fatalError("\(#function): run() was called twice (phase \(phase))")
            }
        }

        /// Whether records may still be handed out.
        var mayPoll: Bool { phase == .initial || phase == .running }

        /// Whether a commit can still be answered (the event loop delivers the answer until the close starts).
        var mayCommit: Bool { phase == .initial || phase == .running || phase == .closeRequested }

        /// Someone asked to close: the iterator went away (`byOwner == false`) or the owner stops.
        /// - Returns: A waiter of `run()` to resume, if it was waiting for the owner's stop.
        mutating func requestClose(byOwner: Bool) -> CheckedContinuation<Void, Never>? {
            if byOwner { stopRequested = true }
            if phase == .initial || phase == .running { phase = .closeRequested }
            if byOwner, let waiter = stopWaiter {
                stopWaiter = nil
                return waiter
            }
            return nil
        }

        enum CloseAction { case startClosing, keepWaiting, nothing }

        /// The loop's turn: whether to start closing now.
        mutating func closeTurn() -> CloseAction {
            switch phase {
            case .closeRequested:
                phase = .closing
                return .startClosing
            case .closing: return .keepWaiting
            case .initial, .running, .closed: return .nothing
            }
        }

        /// The group is left (or closing timed out).
        mutating func closed() {
            guard phase == .closing else { fatalError("\(#function): closed in phase \(phase)") }
            phase = .closed
        }

        enum WaitAction { case returnNow, wait }

        /// After closing: `run()` returns if the owner asked to stop, or parks `waiter` until it does.
        mutating func awaitStop(_ waiter: CheckedContinuation<Void, Never>) -> WaitAction {
            if stopRequested { return .returnNow }
            stopWaiter = waiter
            return .wait
        }
    }
}
