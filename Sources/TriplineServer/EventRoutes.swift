internal import Logging
internal import Foundation
import Synchronization
internal import Hummingbird
internal import HTTPTypes
internal import CoreMetrics
internal import TriplineCore

/// `/api/events`: ingest, filter queries with paging, counts.
struct EventRoutes {
    let pipeline: EventPipeline
    let store: any DurableStore
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    /// Bytes of ingest bodies decoded and waiting for their commit at once (see ``IngestBudget``).
    let ingestBudget: IngestBudget

    func register(on router: Router<TriplineRequestContext>) {
        router.post("/api/events") { request, context in try await ingest(request, context) }
        router.post("/api/events/filter") { request, context in try await filter(request, context) }
        router.get("/api/events/filter/next") { request, context in try await next(request, context) }
        router.post("/api/events/count-by/{countable}") { request, context in try await countBy(request, context) }
        router.get("/api/firings") { request, context in try await firings(request, context) }
        if configuration.benchmarkRoutes {
            // Everything ingest does before the commit writer, for `tripline bench serve` to tell the two apart.
            router.post("/api/bench/parse") { request, context in
                let events = try receivedEvents(try await ingestBody(request, context))
                withExtendedLifetime(events.map(\.storageText)) {}
                return Response(status: .noContent)
            }
        }
    }

    // MARK: - Ingest

    func ingest(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        let body = try await ingestBody(request, context)
        return try await ingestBudget.withAdmission(bytes: body.readableBytes) {
            let events = try receivedEvents(body)
            do {
                let outcome = try await pipeline.submit(events)
                context.logger.debug("events stored", metadata: ["stored": "\(outcome.stored)", "duplicates": "\(outcome.duplicates)"])
            } catch let error as TriplineError where error.code == .limitExceeded {
                throw APIError(.serviceUnavailable, error.reason, headers: [.retryAfter: "1"])
            } catch {
                throw APIError(.serviceUnavailable, "the events could not be stored; nothing was stored, retry later")
            }
            return Response(status: .noContent)
        }
    }

    /// An ingest request's body, once its scope is checked.
    func ingestBody(_ request: Request, _ context: TriplineRequestContext) async throws -> ByteBuffer {
        try context.require(.ingest)
        var request = request
        do {
            return try await request.bodyBytes(limit: configuration.maximumBodySize)
        } catch let error as APIError {
            metrics.rejected("too_large")
            throw error
        }
    }

    /// The events of an ingest request's body, checked: the body as JSON, each event decoded within the limits.
    func receivedEvents(_ body: ByteBuffer) throws -> [Event] {
        let json: JSONValue
        do {
            json = try JSONValue.parseBody(body)
        } catch {
            metrics.rejected("malformed")
            throw error
        }
        return try decodeEvents(json, exactSizeCheck: body.readableBytes > configuration.eventLimits.maximumEventSize)
    }

    /// Decodes a JSON array of events (or one event object), all or nothing.
    func decodeEvents(_ body: JSONValue, exactSizeCheck: Bool) throws -> [Event] {
        let items: [JSONValue]
        switch body {
        case .array(let array): items = array
        case .object: items = [body]
        default:
            metrics.rejected("malformed")
            throw APIError(.unprocessableContent, "the body must be a JSON array of events, not \(body.kindDescription)")
        }
        var events: [Event] = []
        events.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            if exactSizeCheck, item.jsonText.utf8.count > configuration.eventLimits.maximumEventSize {
                metrics.rejected("too_large")
                throw APIError(
                    .contentTooLarge, "events[\(index)]: the event is larger than the limit of \(configuration.eventLimits.maximumEventSize) bytes")
            }
            do {
                events.append(try Event.decode(item, limits: configuration.eventLimits))
            } catch {
                metrics.rejected(error.code == .limitExceeded ? "limit" : "invalid")
                let path = error.path.isEmpty ? "events[\(index)]" : "events[\(index)].\(error.path)"
                throw APIError(.unprocessableContent, "\(path): \(error.reason); nothing was stored")
            }
        }
        return events
    }

    // MARK: - Queries

    func filter(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        var request = request
        let body = try await request.jsonBody(limit: 1 << 20)
        let limit = try limitValue(body["limit"])
        let filter = try decodeFilter(body["filter"], now: wallClock())
        return try await page(filter: filter, filterJSON: body["filter"] ?? .null, offset: 0, limit: limit, request: request)
    }

    func next(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        guard let token = request.uri.queryParameters["page-token"].map(String.init), let state = PageToken(encoded: token) else {
            throw APIError(.unprocessableContent, "page-token is missing or not a token from a previous page")
        }
        let filter = try decodeFilter(state.filter, now: state.now)
        return try await page(filter: filter, filterJSON: state.filter, offset: state.offset, limit: state.limit, request: request, now: state.now)
    }

    func page(filter: EventFilter, filterJSON: JSONValue, offset: Int, limit: Int, request: Request, now: Instant? = nil) async throws -> Response {
        let result = try await store.events(matching: filter, limit: limit, offset: offset)
        var nextPage: JSONValue = .null
        if offset + result.events.count < result.total, limit > 0 {
            let token = PageToken(filter: filterJSON, offset: offset + limit, limit: limit, now: now ?? filter.until ?? Instant(seconds: Date().timeIntervalSince1970))
            let host = request.head.authority ?? "\(configuration.host):\(configuration.port)"
            nextPage = .string("http://\(host)/api/events/filter/next?page-token=\(token.encoded)")
        }
        return jsonResponse(.object(["events": .array(result.events.map(\.jsonValue)), "total": .int(Int64(result.total)), "next_page": nextPage]))
    }

    /// Decodes an `EventFilter`, answering 422 naming the field when it is wrong.
    func decodeFilter(_ json: JSONValue?, now: Instant) throws -> EventFilter {
        do {
            return try EventFilter.decode(json, now: now)
        } catch {
            throw APIError(invalid: error)
        }
    }

    func limitValue(_ value: JSONValue?) throws -> Int {
        guard let value, value != .null else { return 50 }
        guard let number = value.number, number.rounded() == number, number >= 0, number <= 50 else {
            throw APIError(.unprocessableContent, "limit: must be an integer from 0 to 50")
        }
        return Int(number)
    }

    /// The most events count-by counts.
    static let countByMaximum = 1_000_000

    func countBy(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let countable = try context.parameters.require("countable")
        guard ["day", "time", "event", "resource"].contains(countable) else {
            throw APIError(.unprocessableContent, "countable: must be one of day, time, event, resource")
        }
        var request = request
        let body = try await request.jsonBody(limit: 1 << 20)
        let filter = try decodeFilter(body["filter"], now: wallClock())
        let unitSeconds = try timeUnitSeconds(body, countable: countable)
        // Every matching event counts, in one pass over the store; beyond a million the answer is refused rather
        // than short.
        let tally = Mutex((counts: [String: (label: String, count: Int, first: Instant, last: Instant)](), seen: 0))
        try await store.forEachEvent(matching: filter) { event in
            let key: String
            let label: String
            switch countable {
            case "event":
                key = event.event
                label = event.event
            case "resource":
                key = event.resource.id
                label = event.resource[Resource.nameLabel] ?? event.resource.id
            default:
                let bucket = event.occurred.microseconds / (unitSeconds * 1_000_000) * (unitSeconds * 1_000_000)
                key = Instant(microseconds: bucket).rfc3339
                label = key
            }
            return tally.withLock { tally in
                tally.seen += 1
                guard tally.seen <= Self.countByMaximum else { return false }
                var entry = tally.counts[key] ?? (label, 0, event.occurred, event.occurred)
                entry.count += 1
                entry.first = min(entry.first, event.occurred)
                entry.last = max(entry.last, event.occurred)
                tally.counts[key] = entry
                return true
            }
        }
        let (counts, seen) = tally.withLock { ($0.counts, $0.seen) }
        guard seen <= Self.countByMaximum else {
            throw APIError(
                .unprocessableContent,
                "the filter matches more than \(Self.countByMaximum) events, which count-by does not count: narrow filter.occurred or the other criteria")
        }
        let rows: [JSONValue] = counts.keys.sorted().map { key in
            let entry = counts[key]!
            var start = entry.first
            var end = entry.last
            if countable == "day" || countable == "time", let bucketStart = Instant(rfc3339: key) {
                start = bucketStart
                end = bucketStart + TimeSpan.seconds(unitSeconds) - TimeSpan(microseconds: 1)
            }
            return .object([
                "value": .string(key), "label": .string(entry.label), "count": .int(Int64(entry.count)),
                "start_time": .string(start.rfc3339), "end_time": .string(end.rfc3339),
            ])
        }
        return jsonResponse(.array(rows))
    }

    func timeUnitSeconds(_ body: JSONValue, countable: String) throws -> Int64 {
        if countable == "day" { return 86_400 }
        let unit = body["time_unit"]?.stringValue ?? "day"
        var interval = 1.0
        if let value = body["time_interval"], value != .null {
            guard let number = value.number, number.isFinite else {
                throw APIError(.unprocessableContent, "time_interval: must be a number, not \(value.kindDescription)")
            }
            interval = number
        }
        let base: Int64
        switch unit {
        case "week": base = 7 * 86_400
        case "day": base = 86_400
        case "hour": base = 3600
        case "minute": base = 60
        case "second": base = 1
        default: throw APIError(.unprocessableContent, "time_unit: must be one of week, day, hour, minute, second")
        }
        guard interval >= 0.01 else { throw APIError(.unprocessableContent, "time_interval: must be at least 0.01") }
        // Buckets of at most ten years: beyond that the count is one bucket anyway, and the product stays an integer.
        guard Double(base) * interval <= 315_360_000 else {
            throw APIError(.unprocessableContent, "time_interval: \(interval) \(unit)s is longer than ten years")
        }
        return max(1, Int64(Double(base) * interval))
    }

    func firings(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let limit = min(max(request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 50, 1), 1000)
        let records = try await store.recentFirings(limit: limit)
        return jsonResponse(
            .array(
                records.map { record in
                    .object([
                        "id": .string(record.firing.id.lowercasedText),
                        "automation_id": .string(record.firing.automationID.lowercasedText),
                        "automation": .string(record.firing.automationName),
                        "state": .string(record.firing.state.rawValue),
                        "triggering_event": record.firing.triggeringEvent.map { .string($0.id.lowercasedText) } ?? .null,
                        "bucket_labels": .object(record.firing.bucketingLabels.mapValues(JSONValue.string)),
                        "at": .string(record.firing.at.rfc3339),
                        "actions": .int(Int64(record.actionCount)),
                    ])
                }))
    }
}

/// The state of a paged event query, carried in `next_page` as base64url JSON.
struct PageToken {
    var filter: JSONValue
    var offset: Int
    var limit: Int
    var now: Instant

    init(filter: JSONValue, offset: Int, limit: Int, now: Instant) {
        self.filter = filter
        self.offset = offset
        self.limit = limit
        self.now = now
    }

    init?(encoded: String) {
        var base64 = encoded.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let json = try? JSONValue.parse(data), case .int(let offset)? = json["o"],
            case .int(let limit)? = json["l"], case .int(let now)? = json["n"], offset >= 0, limit >= 0, limit <= 50
        else { return nil }
        self.init(filter: json["f"] ?? .null, offset: Int(offset), limit: Int(limit), now: Instant(microseconds: now))
    }

    var encoded: String {
        let json = JSONValue.object(["f": filter, "o": .int(Int64(offset)), "l": .int(Int64(limit)), "n": .int(now.microseconds)])
        return Data(json.jsonText.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
