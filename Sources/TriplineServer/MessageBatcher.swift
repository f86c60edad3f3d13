import Synchronization

/// Messages read from one `/api/events/in` socket and not yet stored, in the order they arrived. The socket's reader
/// appends and waits while `capacity` bytes or `maximumCount` messages are held (a message larger than `capacity`
/// is taken alone), so a client sending faster than the commits is held back by TCP's flow control and nothing is
/// dropped. The storing side takes everything held at once, so the events that arrived during one commit are stored
/// together in the next, in their order.
final class MessageBatcher: Sendable {
    private struct State {
        var messages: [String] = []
        var bytes = 0
        var finished = false
        var failure: (any Error)?
        var reader: CheckedContinuation<Void, Never>?
        var taker: CheckedContinuation<Void, Never>?
    }

    let capacity: Int
    let maximumCount: Int
    private let state = Mutex(State())

    init(capacity: Int, maximumCount: Int) {
        self.capacity = max(1, capacity)
        self.maximumCount = max(1, maximumCount)
    }

    /// Appends a message, first waiting while the batcher is full. Returns at once when the batcher was finished or
    /// the task is cancelled (the message is then dropped: nobody will take it).
    func append(_ message: String) async {
        while true {
            let wait = state.withLock { state -> Bool in
                if state.finished { return false }
                if !state.messages.isEmpty, state.messages.count >= maximumCount || state.bytes + message.utf8.count > capacity { return true }
                state.messages.append(message)
                state.bytes += message.utf8.count
                return false
            }
            if !wait {
                resumeTaker()
                return
            }
            if Task.isCancelled { return }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        // Room appeared, or the end came, between the check above and here.
                        if state.finished || state.messages.isEmpty || Task.isCancelled { return true }
                        state.reader = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                resumeReader()
            }
            if Task.isCancelled { return }
        }
    }

    /// Everything held, oldest first, waiting while nothing is; nil once the reader finished and nothing is left.
    /// - Throws: The reader's error, after what it read before it.
    func takeAll() async throws -> [String]? {
        while true {
            let (taken, end, failure) = state.withLock { state -> ([String], Bool, (any Error)?) in
                if !state.messages.isEmpty {
                    defer {
                        state.messages = []
                        state.bytes = 0
                    }
                    return (state.messages, false, nil)
                }
                return ([], state.finished, state.failure)
            }
            if !taken.isEmpty {
                resumeReader()
                return taken
            }
            if let failure { throw failure }
            if end { return nil }
            try Task.checkCancellation()
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if !state.messages.isEmpty || state.finished || Task.isCancelled { return true }
                        state.taker = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                resumeTaker()
            }
        }
    }

    /// No more messages will come (`failure` when reading failed); wakes both sides.
    func finish(throwing failure: (any Error)? = nil) {
        state.withLock { state in
            state.finished = true
            if state.failure == nil { state.failure = failure }
        }
        resumeReader()
        resumeTaker()
    }

    private func resumeReader() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.reader = nil }
            return state.reader
        }?.resume()
    }

    private func resumeTaker() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.taker = nil }
            return state.taker
        }?.resume()
    }
}
