import Synchronization

/// Wakes one waiting task: a signal given while nobody waits is kept for the next wait. Used to wake the
/// dispatcher when new outbox entries are committed, from any thread (including the ingest writer's, which is not
/// part of Swift concurrency).
public final class WakeSignal: Sendable {
    struct State {
        var signaled = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var cancelled: UInt64?
        var nextID: UInt64 = 0
    }

    let state = Mutex(State())

    /// Creates a signal.
    public init() {}

    /// Wakes the waiter, or the next one to wait.
    public func signal() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.signaled = true
            return nil
        }
        continuation?.resume()
    }

    /// Waits for a signal, at most `timeout`.
    /// - Important: One task waits at a time.
    public func wait(timeout: Duration) async {
        if state.withLock({ state in
            if state.signaled {
                state.signaled = false
                return true
            }
            return false
        }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signaled || state.cancelled == id {
                        state.signaled = false
                        return true
                    }
                    state.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiter, waiter.id == id {
                    state.waiter = nil
                    return waiter.continuation
                }
                state.cancelled = id
                return nil
            }
            continuation?.resume()
        }
    }
}
