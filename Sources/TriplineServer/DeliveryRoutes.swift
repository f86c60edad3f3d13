internal import Foundation
internal import Hummingbird
internal import HTTPTypes
internal import TriplineCore
internal import TriplineActions

/// `/api/deliveries` (Tripline): the action outbox — what ran, what waits, what is dead — with each delivery's
/// attempts, and re-driving dead letters.
struct DeliveryRoutes {
    let log: any DeliveryLog
    let dispatcher: Dispatcher?

    func register(on router: Router<TriplineRequestContext>) {
        router.get("/api/deliveries") { request, context in try await list(request, context) }
        router.get("/api/deliveries/{firing}/{index}") { request, context in try await show(request, context) }
        router.post("/api/deliveries/{firing}/{index}/retry") { request, context in try await retry(request, context) }
    }

    func id(_ context: TriplineRequestContext) throws -> String {
        let firing = try context.parameters.require("firing")
        let index = try context.parameters.require("index")
        guard let uuid = UUID(text: firing) else { throw APIError(.unprocessableContent, "id: \"\(firing)\" is not a firing id (a UUID)") }
        guard let number = Int(index), number >= 0 else { throw APIError(.unprocessableContent, "id: \"\(index)\" is not an action index") }
        return "\(uuid.lowercasedText)/\(number)"
    }

    func list(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        var automation: UUID?
        if let text = query["automation"].map(String.init) {
            guard let id = UUID(text: text) else { throw APIError(.unprocessableContent, "automation: \"\(text)\" is not a UUID") }
            automation = id
        }
        var status: DeliveryStatus?
        if let text = query["status"].map(String.init) {
            guard let value = DeliveryStatus(rawValue: text) else {
                throw APIError(
                    .unprocessableContent, "status: must be one of \(DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text)\"")
            }
            status = value
        }
        var limit = 50
        if let text = query["limit"].map(String.init) {
            guard let value = Int(text), (1...1000).contains(value) else { throw APIError(.unprocessableContent, "limit: must be an integer from 1 to 1000") }
            limit = value
        }
        let deliveries = try await log.deliveries(automation: automation, status: status, limit: limit)
        return jsonResponse(.array(deliveries.map { $0.jsonValue(withAttempts: false) }))
    }

    func show(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        guard let delivery = try await log.delivery(id: try id(context)) else { throw APIError(.notFound, "Delivery not found") }
        return jsonResponse(delivery.jsonValue(withAttempts: true))
    }

    func retry(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.admin)
        let id = try id(context)
        guard let existing = try await log.delivery(id: id) else { throw APIError(.notFound, "Delivery not found") }
        guard try await log.redrive(id: id, now: wallClock()) else {
            throw APIError(.conflict, "delivery \(id) is \(existing.status.rawValue); only dead or suppressed deliveries can be retried")
        }
        dispatcher?.wake.signal()
        guard let delivery = try await log.delivery(id: id) else { throw APIError(.notFound, "Delivery not found") }
        return jsonResponse(delivery.jsonValue(withAttempts: true), status: .accepted)
    }
}
