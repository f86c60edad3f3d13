internal import NIOWebSocket
internal import CoreMetrics
internal import Foundation
import Synchronization
internal import HTTPTypes
internal import Hummingbird
internal import HummingbirdWebSocket
internal import Logging
internal import NIOCore
internal import TriplineCore

/// Prefect's event websockets: `/api/events/in` (one event per text message) and `/api/events/out` (a filtered
/// live feed with optional backfill). With the `prefect` subprotocol the first message must be
/// `{"type": "auth", "token": ...}`; without it (legacy mode) the upgrade request itself must carry a valid
/// `Authorization` header, or no tokens may be configured.
struct EventWebSockets {
    let pipeline: EventPipeline
    let store: any DurableStore
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    /// How far back a feed's backfill reaches (Prefect's default), and how many of the newest events it sends at most.
    static let backfillWindow: TimeSpan = .minutes(15)
    static let backfillMaximum = 10_000
    /// How many times (100 ms apart) an event from `/api/events/in` waits for room in the ingest queue.
    static let backPressureWaits = 100

    func shouldUpgrade(_ request: HTTPRequest, logger: Logger) -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let path = request.path.map { String($0.prefix { $0 != "?" }) } ?? ""
        guard path == "/api/events/in" || path == "/api/events/out" else { return .dontUpgrade }
        let required: TokenScope = path == "/api/events/in" ? .ingest : .read
        let protocols = request.headerFields[values: .secWebSocketProtocol].flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let prefectProtocol = protocols.contains("prefect")
        var headerScope: TokenScope?
        if configuration.tokens.isEmpty {
            headerScope = .admin
        } else if let header = request.headerFields[.authorization], let token = AuthenticationMiddleware.match(header: header, tokens: configuration.tokens) {
            headerScope = token.scope
        }
        // Legacy mode (no `prefect` subprotocol) has no handshake: the upgrade request must carry the credential.
        if !prefectProtocol, headerScope.map({ $0 < required }) ?? true {
            metrics.authenticationFailures.increment()
            logger.notice("websocket upgrade without credentials refused", metadata: ["path": "\(path)"])
            return .dontUpgrade
        }
        var headers: HTTPFields = [:]
        if prefectProtocol { headers[.secWebSocketProtocol] = "prefect" }
        let connection = Connection(
            handler: self, path: path, required: required, handshake: prefectProtocol, headerScope: headerScope)
        return .upgrade(headers) { inbound, outbound, context in
            try await connection.run(inbound: inbound, outbound: outbound, logger: context.logger)
        }
    }

    struct Connection: Sendable {
        let handler: EventWebSockets
        let path: String
        let required: TokenScope
        let handshake: Bool
        let headerScope: TokenScope?

        func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, logger: Logger) async throws {
            let maximumSize = handler.configuration.maximumBodySize
            if path == "/api/events/in" {
                // Read straight from the socket: the next message is read once the last one is stored, so a client
                // sending faster than the commits is held back by TCP's flow control, and no message is dropped.
                var messages = inbound.messages(maxSize: maximumSize).makeAsyncIterator()
                try await serve(&messages, outbound: outbound, logger: logger)
                return
            }
            // The live feed: one task reads the client's messages into a stream, the other serves. When the client
            // closes, the reader ends and the serving task (however quiet the feed) is cancelled with it. After the
            // filter the client has nothing to say, so the small buffer only ever holds what it sends out of turn.
            let (incoming, continuation) = AsyncStream.makeStream(of: WebSocketMessage.self, bufferingPolicy: .bufferingOldest(16))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { continuation.finish() }
                    for try await message in inbound.messages(maxSize: maximumSize) { continuation.yield(message) }
                }
                group.addTask {
                    var messages = incoming.makeAsyncIterator()
                    try await serve(&messages, outbound: outbound, logger: logger)
                }
                try await group.next()
                group.cancelAll()
            }
        }

        func serve<Messages: AsyncIteratorProtocol>(_ messages: inout Messages, outbound: WebSocketOutboundWriter, logger: Logger) async throws
        where Messages.Element == WebSocketMessage {
            if handshake {
                guard case .text(let text)? = try await messages.next(), let auth = try? JSONValue.parse(text), auth["type"]?.stringValue == "auth" else {
                    try await outbound.writeTextMessage(#"{"type": "auth_failure", "reason": "expected {\"type\": \"auth\", \"token\": ...} first"}"#)
                    try await outbound.close(.policyViolation, reason: "auth required")
                    return
                }
                let scope: TokenScope?
                if handler.configuration.tokens.isEmpty {
                    scope = .admin
                } else if let token = auth["token"]?.stringValue, let match = AuthenticationMiddleware.find(token, in: handler.configuration.tokens) {
                    scope = match.scope
                } else {
                    scope = headerScope
                }
                guard let scope, scope >= required else {
                    handler.metrics.authenticationFailures.increment()
                    logger.notice("websocket authentication failed", metadata: ["path": "\(path)"])
                    try await outbound.writeTextMessage(#"{"type": "auth_failure", "reason": "the token is not valid for this endpoint"}"#)
                    try await outbound.close(.policyViolation, reason: "auth failed")
                    return
                }
                try await outbound.writeTextMessage(#"{"type": "auth_success"}"#)
            }
            if path == "/api/events/in" {
                while let message = try await messages.next() {
                    guard case .text(let text) = message else { continue }
                    let event: Event
                    do {
                        event = try Event.decode(json: Data(text.utf8), limits: handler.configuration.eventLimits)
                    } catch {
                        handler.metrics.rejected("invalid")
                        logger.warning("invalid event on /api/events/in skipped", metadata: ["error": "\(error.message)"])
                        continue
                    }
                    // Back-pressure waits (the socket holds the client's next events meanwhile). An event that cannot
                    // be stored closes the socket: Prefect's client reconnects and sends again what it has not seen
                    // confirmed, where skipping it would lose it without a word.
                    var waited = 0
                    while true {
                        do {
                            _ = try await handler.pipeline.submit([event])
                            break
                        } catch let error as TriplineError where error.code == .limitExceeded && waited < EventWebSockets.backPressureWaits {
                            waited += 1
                            try await Task.sleep(for: .milliseconds(100))
                        } catch {
                            logger.error(
                                "storing an event from /api/events/in failed; closing the socket so that the client sends it again",
                                metadata: ["error": "\(error)"])
                            try await outbound.close(.unexpectedServerError, reason: "the event could not be stored; reconnect and send it again")
                            return
                        }
                    }
                }
                return
            }
            guard case .text(let text)? = try await messages.next(), let request = try? JSONValue.parse(text), request["type"]?.stringValue == "filter" else {
                try await outbound.close(.policyViolation, reason: "expected a filter message")
                return
            }
            let now = Instant(seconds: Date().timeIntervalSince1970)
            let live: EventFilter
            do {
                live = try EventFilter.decode(request["filter"], now: now, applyDefaults: false)
            } catch {
                try await outbound.writeTextMessage(JSONValue.object(["type": "error", "detail": .string(error.description)]).jsonText)
                try await outbound.close(.policyViolation, reason: "invalid filter")
                return
            }
            // Subscribe before reading the backfill so that nothing falls between the two.
            let subscription = await handler.pipeline.subscribe()
            defer { Task { [pipeline = handler.pipeline] in await pipeline.unsubscribe(subscription.id) } }
            var sent: Set<EventID> = []
            if request["backfill"] == .bool(true) {
                var backfill = live
                backfill.since = max(live.since ?? Instant(microseconds: .min), now - EventWebSockets.backfillWindow)
                backfill.until = nil
                // One pass over the store, newest first, keeping at most `backfillMaximum` (Prefect sends the whole
                // window; a busy quarter hour could hold millions), then sent oldest first.
                backfill.ascending = false
                let newest = Mutex([Event]())
                try await handler.store.forEachEvent(matching: backfill) { event in
                    newest.withLock { list in
                        list.append(event)
                        return list.count < EventWebSockets.backfillMaximum
                    }
                }
                let events = newest.withLock { $0 }
                if events.count == EventWebSockets.backfillMaximum {
                    logger.info("live feed backfill limited to the newest events", metadata: ["events": "\(events.count)"])
                }
                for event in events.reversed() where sent.insert(event.id).inserted {
                    try await outbound.writeTextMessage(JSONValue.object(["type": "event", "event": event.jsonValue]).jsonText)
                }
            }
            for await event in subscription.events where live.matches(event) && !sent.contains(event.id) {
                try await outbound.writeTextMessage(JSONValue.object(["type": "event", "event": event.jsonValue]).jsonText)
            }
        }
    }
}
