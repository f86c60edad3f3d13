import CoreMetrics
import Foundation
import Logging
import MetricsTestKit
import Synchronization
import Testing
import TriplineCore
import TriplineTestKit

@testable import TriplineServer

@Suite struct LiveFeedTests {
    /// Keeps the messages logged through it.
    struct CapturingLogHandler: LogHandler {
        let log: Log
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let details = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log.messages.withLock { $0.append("\(event.level): \(event.message) \(details)") }
        }
    }

    final class Log: Sendable {
        let messages = Mutex<[String]>([])
        var all: [String] { messages.withLock { $0 } }
    }

    @Test func aSubscriberThatFallsBehindLosesItsOldestEventsCountedAndLogged() async throws {
        let metrics = TestMetrics()
        let log = Log()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(log: log) }
        var feed = LiveFeed(dropped: Counter(label: "tripline_live_feed_dropped_total", factory: metrics), logger: logger)
        let slow = feed.subscribe(buffer: 3) { _ in }
        let keeping = feed.subscribe(buffer: 100) { _ in }
        feed.publish((1...5).map { TestEvents.event($0, "feed.event", at: Double($0)) })
        feed.publish([TestEvents.event(6, "feed.event", at: 6)])

        #expect(try metrics.expectCounter("tripline_live_feed_dropped_total").totalValue == 3, "events 1, 2 and 3 lost by the slow subscriber")
        #expect(log.all.filter { $0.contains("fell behind") }.count == 1, "one warning per subscription, not per event")
        feed.unsubscribe(slow.id)
        var received: [EventID] = []
        for await event in slow.events { received.append(event.id) }
        #expect(received == [4, 5, 6].map(TestEvents.id), "the newest events are kept")
        #expect(log.all.last?.contains("dropped=3") == true, "its total is logged when it ends: \(log.all)")

        feed.finishAll()
        var kept = 0
        for await _ in keeping.events { kept += 1 }
        #expect(kept == 6, "a subscriber with room loses nothing")
        #expect(log.all.count == 2)
    }
}
