internal import CoreMetrics
internal import Foundation
internal import Logging
internal import TriplineCore

/// The subscribers of the live feed (`/api/events/out`), each with a bounded buffer of events not yet sent. A
/// subscriber that falls `buffer` events behind loses its oldest ones: each lost event is counted in
/// `tripline_live_feed_dropped_total`, the first loss of a subscription is logged as a warning, and its total when it
/// ends. Owned by the pipeline's actor; not thread-safe on its own.
struct LiveFeed {
    private struct Subscriber {
        let continuation: AsyncStream<Event>.Continuation
        var dropped = 0
    }

    private var subscribers: [UUID: Subscriber] = [:]
    let dropped: Counter
    let logger: Logger

    init(dropped: Counter, logger: Logger) {
        self.dropped = dropped
        self.logger = logger
    }

    var count: Int { subscribers.count }

    /// Adds a subscriber; `onTermination` runs when its stream ends (the consumer went away).
    mutating func subscribe(buffer: Int, onTermination: @escaping @Sendable (UUID) -> Void) -> (id: UUID, events: AsyncStream<Event>) {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(max(1, buffer)))
        subscribers[id] = Subscriber(continuation: continuation)
        continuation.onTermination = { _ in onTermination(id) }
        return (id, stream)
    }

    mutating func unsubscribe(_ id: UUID) {
        guard let subscriber = subscribers.removeValue(forKey: id) else { return }
        subscriber.continuation.finish()
        if subscriber.dropped > 0 {
            logger.warning(
                "live feed subscription ended; it lost events it could not keep up with",
                metadata: ["subscription": "\(id.lowercasedText)", "dropped": "\(subscriber.dropped)"])
        }
    }

    mutating func publish(_ events: [Event]) {
        guard !subscribers.isEmpty, !events.isEmpty else { return }
        var behind: [(id: UUID, lost: Int)] = []
        for (id, subscriber) in subscribers {
            var lost = 0
            for event in events {
                if case .dropped = subscriber.continuation.yield(event) { lost += 1 }
            }
            if lost > 0 { behind.append((id, lost)) }
        }
        for (id, lost) in behind {
            dropped.increment(by: lost)
            if subscribers[id]?.dropped == 0 {
                logger.warning(
                    "a live feed subscriber fell behind; its oldest events are dropped",
                    metadata: ["subscription": "\(id.lowercasedText)", "buffer": "full"])
            }
            subscribers[id]?.dropped += lost
        }
    }

    /// Ends every subscription (shutdown).
    mutating func finishAll() {
        for id in Array(subscribers.keys) { unsubscribe(id) }
    }
}
