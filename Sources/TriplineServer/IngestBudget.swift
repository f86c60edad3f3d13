import Synchronization
internal import CoreMetrics

/// How many bytes of request bodies ingest decodes and holds for their commit at once. A decoded event takes several
/// times its JSON in memory (its resources and payload as dictionaries, its stored text, the engine's copy), so it is
/// the decoded requests waiting for a commit, not the connections, that set the server's memory under load. A request
/// over the budget waits, first come first served, with its body undecoded; a request larger than the whole budget is
/// admitted alone.
final class IngestBudget: Sendable {
    private struct Waiter {
        let bytes: Int
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var inUse = 0
        var waiters: [Waiter] = []
        var head = 0
    }

    /// The budget in bytes.
    let capacity: Int
    private let state = Mutex(State())
    private let waits: Counter?

    /// Creates a budget of `capacity` bytes (at least 1); `waits` counts the requests that had to wait.
    init(capacity: Int, waits: Counter? = nil) {
        self.capacity = max(1, capacity)
        self.waits = waits
    }

    /// Runs `body` once `bytes` fit in the budget, and returns them when it ends (also when it throws).
    func withAdmission<T>(bytes: Int, _ body: () async throws -> T) async throws -> T {
        let charge = min(max(bytes, 1), capacity)
        await admit(charge)
        defer { release(charge) }
        return try await body()
    }

    /// Bytes admitted and not yet returned.
    var inUse: Int { state.withLock { $0.inUse } }

    /// Requests waiting to be admitted.
    var waiting: Int { state.withLock { $0.waiters.count - $0.head } }

    private func admit(_ bytes: Int) async {
        let admitted = state.withLock { state -> Bool in
            guard state.waiters.count == state.head, state.inUse + bytes <= capacity else { return false }
            state.inUse += bytes
            return true
        }
        if admitted { return }
        waits?.increment()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.waiters.append(Waiter(bytes: bytes, continuation: continuation))
                return Self.admitWaiting(&state, capacity: capacity)
            }
            for waiter in ready { waiter.resume() }
        }
    }

    private func release(_ bytes: Int) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.inUse -= bytes
            return Self.admitWaiting(&state, capacity: capacity)
        }
        for waiter in ready { waiter.resume() }
    }

    /// Admits waiters in arrival order while the first one fits (the budget charged for each).
    private static func admitWaiting(_ state: inout State, capacity: Int) -> [CheckedContinuation<Void, Never>] {
        var ready: [CheckedContinuation<Void, Never>] = []
        while state.head < state.waiters.count, state.inUse + state.waiters[state.head].bytes <= capacity {
            state.inUse += state.waiters[state.head].bytes
            ready.append(state.waiters[state.head].continuation)
            state.head += 1
        }
        if state.head == state.waiters.count {
            state.waiters.removeAll(keepingCapacity: true)
            state.head = 0
        } else if state.head > 64, state.head * 2 > state.waiters.count {
            state.waiters.removeFirst(state.head)
            state.head = 0
        }
        return ready
    }
}
