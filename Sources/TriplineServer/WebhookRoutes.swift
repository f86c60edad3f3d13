internal import Foundation
internal import Hummingbird
internal import HTTPTypes
internal import CoreMetrics
internal import Logging
internal import NIOCore
internal import TriplineCore
internal import TriplineIngest

/// `/hooks/{slug}`: webhook deliveries, authenticated by their signatures (not by API tokens); and
/// `/api/webhooks…`: the endpoints and their delivery history.
struct WebhookRoutes {
    let catalog: WebhookCatalog
    let pipeline: EventPipeline
    let recorder: DeliveryRecorder
    let log: any WebhookDeliveryLog
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    /// Shared with the event API (see ``IngestBudget``).
    let ingestBudget: IngestBudget

    func register(on router: Router<TriplineRequestContext>) {
        // Every method reaches the endpoint, so that a sender using the wrong one hears 405 (and it is in the history).
        for method in [HTTPRequest.Method.post, .put, .get, .head, .delete, .patch, .options] {
            router.on("/hooks/{slug}", method: method) { request, context in try await receive(request, context) }
        }
        router.get("/api/webhooks") { _, context in
            try context.require(.read)
            return jsonResponse(.array(catalog.all().map(\.jsonValue)))
        }
        router.get("/api/webhooks/{slug}") { _, context in
            try context.require(.read)
            let slug = context.parameters.get("slug") ?? ""
            guard let entry = catalog.entry(slug) else { throw APIError(.notFound, "no webhook endpoint with the slug \(slug)") }
            return jsonResponse(entry.jsonValue)
        }
        router.get("/api/webhooks/{slug}/deliveries") { request, context in try await deliveries(request, context) }
        router.get("/api/webhooks/{slug}/deliveries/{id}") { _, context in
            try context.require(.read)
            await recorder.flush()
            guard let id = context.parameters.get("id").flatMap(Int64.init), let delivery = try await log.delivery(id: id),
                delivery.slug == context.parameters.get("slug")
            else { throw APIError(.notFound, "no such delivery") }
            return jsonResponse(delivery.jsonValue(includeBody: true))
        }
    }

    func deliveries(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let slug = context.parameters.get("slug") ?? ""
        let query = request.uri.queryParameters
        var limit = 50
        if let text = query["limit"] {
            guard let value = Int(String(text)), value >= 1, value <= 1000 else { throw APIError(.unprocessableContent, "limit: must be 1 to 1000") }
            limit = value
        }
        var outcome: String?
        if let text = query["outcome"] ?? query["status"] {
            guard ["accepted", "ignored", "rejected"].contains(String(text)) else {
                throw APIError(.unprocessableContent, "outcome: must be accepted, ignored or rejected")
            }
            outcome = String(text)
        }
        var before: Int64?
        if let text = query["before"] {
            guard let value = Int64(String(text)) else { throw APIError(.unprocessableContent, "before: must be a delivery id") }
            before = value
        }
        await recorder.flush()
        let records = try await log.deliveries(slug: slug, outcome: outcome, before: before, limit: limit)
        return jsonResponse(.array(records.map { $0.jsonValue(includeBody: false) }))
    }

    // MARK: - Receiving

    /// The largest event an endpoint's deliveries may make: Prefect's event limit, or, for an endpoint that sets its own
    /// `max_body_size`, that size plus room for the event's envelope (id, resources, headers kept in the payload).
    static func eventSizeLimit(endpointBodyLimit: Int?, events: Event.Limits) -> Int {
        max(events.maximumEventSize, endpointBodyLimit.map { $0 + 64 * 1024 } ?? 0)
    }

    func receive(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        let received = wallClock()
        let slug = context.parameters.get("slug") ?? ""
        guard let entry = catalog.entry(slug), entry.endpoint.enabled else {
            metrics.webhookRejected(slug: "unknown", reason: "unknown_slug")
            throw APIError(.notFound, "no webhook endpoint at /hooks/\(slug.prefix(64))")
        }
        let endpoint = entry.endpoint
        let method = request.method.rawValue
        let contentType = request.headers[.contentType]
        let requestID = context.logger[metadataKey: "request_id"].map { "\($0)" }
        var record = WebhookDelivery(
            slug: slug, received: received, method: method, status: 0, outcome: "rejected", contentType: contentType.map { String($0.prefix(200)) },
            requestID: requestID)

        func finish(_ status: Int, outcome: String, code: String?, reason: String?, body: [UInt8]? = nil) {
            record.status = status
            record.outcome = outcome
            record.code = code
            record.reason = reason
            record.latencyMicroseconds = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1000)
            if outcome == "rejected", endpoint.keepFailedBodies, let body { record.body = Array(body.prefix(1 << 20)) }
            recorder.record(record)
            metrics.webhookDelivery(slug: slug, outcome: outcome, seconds: Double(record.latencyMicroseconds) / 1e6)
            if outcome == "rejected", let code { metrics.webhookRejected(slug: slug, reason: code) }
        }

        guard let processor = entry.processor else {
            finish(503, outcome: "rejected", code: "not_configured", reason: "the endpoint's secret is not available")
            throw APIError(.serviceUnavailable, "this webhook endpoint is not configured yet")
        }
        let limit = endpoint.maximumBodySize ?? configuration.maximumBodySize
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        if let length = declaredLength, length > limit {
            record.size = length
            finish(413, outcome: "rejected", code: "too_large", reason: "the body is larger than \(limit) bytes")
            throw APIError(.contentTooLarge, "the body is larger than the limit of \(limit) bytes")
        }
        var request = request
        let body: [UInt8]
        do {
            body = Array(try await request.collectBody(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            // Read up to the limit: the size is at least that (chunked bodies declare none).
            record.size = declaredLength ?? limit + 1
            finish(413, outcome: "rejected", code: "too_large", reason: "the body is larger than \(limit) bytes")
            throw APIError(.contentTooLarge, "the body is larger than the limit of \(limit) bytes")
        }
        record.size = body.count
        // Decoding, mapping and the commit hold the body and the events made from it: the event API's budget bounds
        // them for deliveries too.
        return try await ingestBudget.withAdmission(bytes: body.count) {
            var headers = WebhookHeaders()
            for field in request.headers { headers.add(field.name.rawName, field.value) }
            let query = request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }
            let webhookRequest = WebhookRequest(method: method, slug: slug, headers: headers, query: query, body: body, received: received)

            let result: WebhookResult
            do throws(WebhookRejection) {
                result = try await processor.process(webhookRequest)
            } catch {
                finish(error.status, outcome: "rejected", code: error.code, reason: error.reason, body: body)
                context.logger.notice(
                    "webhook delivery rejected", metadata: ["slug": "\(slug)", "status": "\(error.status)", "reason": "\(error.code)"])
                throw APIError(HTTPResponse.Status(code: error.status), error.reason, headers: error.status == 405 ? [.allow: "POST, PUT, GET, HEAD"] : [:])
            }
            // Each event's own size counts, not the body's: a batch of small events may arrive in a large body. An endpoint
            // that allows large bodies (`max_body_size`) allows events as large (a 25 MB GitHub push is one event).
            if body.count > configuration.eventLimits.maximumEventSize {
                let eventLimit = Self.eventSizeLimit(endpointBodyLimit: endpoint.maximumBodySize, events: configuration.eventLimits)
                for (index, event) in result.events.enumerated() {
                    let size = event.storageText.utf8.count
                    guard size > eventLimit else { continue }
                    let reason = "event \(index) made from this delivery is \(size) bytes, more than the limit of \(eventLimit) bytes"
                    finish(413, outcome: "rejected", code: "too_large", reason: reason, body: body)
                    throw APIError(.contentTooLarge, "\(reason); an endpoint's max_body_size raises its limit")
                }
            }
            for (index, event) in result.events.enumerated() {
                do throws(TriplineError) {
                    try event.checkLimits(configuration.eventLimits)
                } catch {
                    let reason = "event \(index) made from this delivery: \(error.path.isEmpty ? "" : "\(error.path): ")\(error.reason)"
                    finish(400, outcome: "rejected", code: "invalid_event", reason: reason, body: body)
                    throw APIError(.badRequest, reason)
                }
            }
            if !result.events.isEmpty {
                do {
                    let outcome = try await pipeline.submit(result.events)
                    record.duplicates = outcome.duplicates
                } catch {
                    finish(503, outcome: "rejected", code: "store_unavailable", reason: "the events could not be stored", body: body)
                    throw APIError(.serviceUnavailable, "the events could not be stored; retry later", headers: [.retryAfter: "1"])
                }
            }
            record.eventIDs = result.events.map(\.id)
            finish(result.status, outcome: result.events.isEmpty ? "ignored" : "accepted", code: nil, reason: result.note)
            if !result.body.isEmpty {
                return Response(
                    status: HTTPResponse.Status(code: result.status), headers: [.contentType: result.contentType ?? "application/octet-stream"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: result.body)))
            }
            let answer: JSONValue = .object([
                "accepted": .int(Int64(result.events.count)), "duplicates": .int(Int64(record.duplicates)),
                "event_ids": .array(result.events.map { .string($0.id.lowercasedText) }),
            ])
            return jsonResponse(answer, status: HTTPResponse.Status(code: result.status))
        }
    }
}
