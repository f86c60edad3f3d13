import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// `/api/events/in` over a real websocket, from Hummingbird's client: a client sending faster than the commits (so
/// that the server has to hold it back), its events right behind the auth message, one bad message among them.
@Suite(.serialized) struct EventSocketTests {
    @Test func eventsSentQuicklyAreAllStoredInTheirOrderAndABadOneIsSkipped() async throws {
        let server = try ServerProcess(rules: [:])
        try await server.start()
        let count = 1_000
        // One instant for all, so that the stored order (by time, then by arrival) is the order of arrival.
        let occurred = Date(timeIntervalSince1970: 1_790_000_000)
        // 4 KB each, encoded beforehand so that they go out as fast as the socket takes them: the server's buffer for
        // the socket (64 KiB) fills while a commit runs, and its reader has to wait.
        let padding = String(repeating: "x", count: 4_000)
        var encoded: [String] = []
        for number in 1...count {
            if number == count / 2 { encoded.append(#"{"id": "not an event"}"#) }
            var event = TestEvent.json(number, "socket.flood", occurred: occurred, resource: "socket.\(number)")
            event["payload"] = ["padding": padding]
            encoded.append(String(decoding: try JSONSerialization.data(withJSONObject: event), as: UTF8.self))
        }
        let messages = encoded
        var headers = HTTPFields()
        headers[.secWebSocketProtocol] = "prefect"
        let answer = Mutex<String?>(nil)
        // Its own event loop: the 4 MB it sends would otherwise hold up the shared loops other tests' servers run on.
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await WebSocketClient.connect(
            url: "ws://127.0.0.1:\(server.port)/api/events/in", configuration: .init(additionalHeaders: headers), eventLoopGroup: loop,
            logger: Logger(label: "test")
        ) { inbound, outbound, _ in
            try await outbound.write(.text(#"{"type": "auth", "token": null}"#))
            for text in messages { try await outbound.write(.text(text)) }
            var replies = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
            if case .text(let text)? = try await replies.next() { answer.withLock { $0 = text } }
        }
        try await loop.shutdownGracefully()
        #expect(answer.withLock { $0 } == #"{"type": "auth_success"}"#)
        try await eventually(within: 10, every: .milliseconds(50)) { try await server.metric("tripline_events_stored_total") ?? 0 >= Double(count) }
        #expect(try await server.metric("tripline_events_stored_total") == Double(count))
        let metrics = String(decoding: try await server.request("GET", "/metrics").1, as: UTF8.self)
        #expect(metrics.contains(#"tripline_events_rejected_total{reason="invalid"} 1"#))
        for (order, expected) in [("ASC", Array(1...50)), ("DESC", Array((count - 49...count).reversed()))] {
            let (_, page) = try await server.json(
                "POST", "/api/events/filter", json: #"{"filter": {"event": {"name": ["socket.flood"]}, "order": "\#(order)"}, "limit": 50}"#)
            let ids = ((page as? [String: Any])?["events"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == expected.map(TestEvent.id), "stored in the order sent (\(order))")
        }
        try await server.stop()
    }
}
