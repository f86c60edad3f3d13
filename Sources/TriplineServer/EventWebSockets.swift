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
    /// The event API's budget, charged for each batch of `/api/events/in` messages while it is decoded and stored.
    let ingestBudget: IngestBudget

    /// How far back a feed's backfill reaches (Prefect's default), and how many of the newest events it sends at most.
    static let backfillWindow: TimeSpan = .minutes(15)
    static let backfillMaximum = 10_000
    /// How many times (100 ms apart) an event from `/api/events/in` waits for room in the ingest queue.
    static let backPressureWaits = 100
    /// What one `/api/events/in` socket holds read and not yet stored (see ``MessageBatcher``).
    static let socketBufferBytes = 64 * 1024
    static let socketBufferMessages = 512

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
                // One task reads the socket into a bounded batcher (when it is full the reader waits, and TCP's flow
                // control holds the client back: nothing is dropped); this one stores what arrived during each commit
                // in the next, in order. When the client closes, what it sent is still stored before the end.
                let batcher = MessageBatcher(capacity: EventWebSockets.socketBufferBytes, maximumCount: EventWebSockets.socketBufferMessages)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await message in inbound.messages(maxSize: maximumSize) {
                                guard case .text(let text) = message else { continue }
                                await batcher.append(text)
                            }
                            batcher.finish()
                        } catch {
                            batcher.finish(throwing: error)
                        }
                    }
                    defer { group.cancelAll() }
                    try await ingest(from: batcher, outbound: outbound, logger: logger)
                }
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
                    try await serveFeed(&messages, outbound: outbound, logger: logger)
                }
                try await group.next()
                group.cancelAll()
            }
        }

        /// Checks Prefect's auth message (the first of the socket) and answers it; false when the socket was closed.
        func authenticate(_ first: String?, outbound: WebSocketOutboundWriter, logger: Logger) async throws -> Bool {
            guard let first, let auth = try? JSONValue.parse(first), auth["type"]?.stringValue == "auth" else {
                try await outbound.writeTextMessage(#"{"type": "auth_failure", "reason": "expected {\"type\": \"auth\", \"token\": ...} first"}"#)
                try await outbound.close(.policyViolation, reason: "auth required")
                return false
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
                return false
            }
            try await outbound.writeTextMessage(#"{"type": "auth_success"}"#)
            return true
        }

        /// `/api/events/in`: one event per text message; the messages that arrived during a commit are stored
        /// together in the next.
        func ingest(from batcher: MessageBatcher, outbound: WebSocketOutboundWriter, logger: Logger) async throws {
            var authenticated = !handshake
            while var texts = try await batcher.takeAll() {
                if !authenticated {
                    guard try await authenticate(texts.first, outbound: outbound, logger: logger) else { return }
                    authenticated = true
                    texts.removeFirst()
                    if texts.isEmpty { continue }
                }
                let bytes = texts.reduce(0) { $0 + $1.utf8.count }
                let stored = try await handler.ingestBudget.withAdmission(bytes: bytes) { () async throws -> Bool in
                    var events: [Event] = []
                    events.reserveCapacity(texts.count)
                    for text in texts {
                        do throws(TriplineError) {
                            events.append(try Event.decode(json: Data(text.utf8), limits: handler.configuration.eventLimits))
                        } catch {
                            handler.metrics.rejected("invalid")
                            logger.warning("invalid event on /api/events/in skipped", metadata: ["error": "\(error.message)"])
                        }
                    }
                    return try await store(events, outbound: outbound, logger: logger)
                }
                if !stored { return }
            }
        }

        /// Stores events, waiting for room in the ingest queue (the socket holds the client's next events meanwhile).
        /// Events that cannot be stored close the socket: Prefect's client reconnects and sends again what it has not
        /// seen confirmed, where skipping them would lose them without a word. Returns false when it closed.
        func store(_ events: [Event], outbound: WebSocketOutboundWriter, logger: Logger) async throws -> Bool {
            var waited = 0
            while true {
                do {
                    _ = try await handler.pipeline.submit(events)
                    return true
                } catch let error as TriplineError where error.code == .limitExceeded && waited < EventWebSockets.backPressureWaits {
                    waited += 1
                    try await Task.sleep(for: .milliseconds(100))
                } catch {
                    logger.error(
                        "storing events from /api/events/in failed; closing the socket so that the client sends them again",
                        metadata: ["error": "\(error)", "events": "\(events.count)"])
                    try await outbound.close(.unexpectedServerError, reason: "the events could not be stored; reconnect and send them again")
                    return false
                }
            }
        }

        /// `/api/events/out`: the handshake, the filter message, the backfill, then the live events.
        func serveFeed<Messages: AsyncIteratorProtocol>(_ messages: inout Messages, outbound: WebSocketOutboundWriter, logger: Logger) async throws
        where Messages.Element == WebSocketMessage {
            if handshake {
                let first: String?
                if case .text(let text)? = try await messages.next() { first = text } else { first = nil }
                guard try await authenticate(first, outbound: outbound, logger: logger) else { return }
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
