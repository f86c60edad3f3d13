internal import Foundation
internal import Hummingbird
internal import HTTPTypes
internal import TriplineCore

/// `/api/automations`: Prefect's automations API. Rules-folder automations are listed but read-only.
struct AutomationRoutes {
    let catalog: AutomationCatalog

    func register(on router: Router<TriplineRequestContext>) {
        router.post("/api/automations") { request, context in try await create(request, context) }
        router.post("/api/automations/filter") { request, context in try await filter(request, context) }
        router.post("/api/automations/count") { request, context in try await count(request, context) }
        // Resource ids may contain slashes (`github.repository.acme/api`): the rest of the path is the id, as in
        // Prefect's `{resource_id:path}`.
        router.get("/api/automations/related-to/**") { request, context in try await relatedTo(request, context) }
        router.delete("/api/automations/owned-by/**") { request, context in try await deleteOwnedBy(request, context) }
        router.get("/api/automations/{id}") { request, context in try await read(request, context) }
        router.put("/api/automations/{id}") { request, context in try await replace(request, context) }
        router.patch("/api/automations/{id}") { request, context in try await patch(request, context) }
        router.delete("/api/automations/{id}") { request, context in try await delete(request, context) }
    }

    func id(_ context: TriplineRequestContext) throws -> UUID {
        let text = try context.parameters.require("id")
        guard let id = UUID(text: text) else { throw APIError(.unprocessableContent, "id: \"\(text)\" is not a UUID") }
        return id
    }

    /// Decodes an automation body with Tripline's validation; every problem is listed in `detail`.
    func decodeAutomation(_ body: JSONValue, id: UUID?) throws -> Automation {
        var object = body.objectValue ?? [:]
        if let id { object["id"] = .string(id.lowercasedText) }
        let diagnostics = Diagnostics()
        let automation = Automation.decode(RuleNode(json: .object(object)), diagnostics: diagnostics)
        if !diagnostics.errors.isEmpty || automation == nil {
            let detail = diagnostics.errors.map(\.message).joined(separator: "; ")
            throw APIError(.unprocessableContent, detail.isEmpty ? "the body is not an automation" : detail)
        }
        return automation!
    }

    func create(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.admin)
        var request = request
        let body = try await request.jsonBody(limit: 1 << 20)
        guard body.objectValue != nil else { throw APIError(.unprocessableContent, "the body must be an automation object") }
        var automation = try decodeAutomation(body, id: nil)
        if body["id"] == nil { automation.id = UUID() }
        let entry = try await catalog.create(automation)
        return jsonResponse(entry.jsonValue, status: .created)
    }

    func read(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        guard let entry = await catalog.entry(try id(context)) else { throw APIError(.notFound, "Automation not found") }
        return jsonResponse(entry.jsonValue)
    }

    func replace(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.admin)
        let id = try id(context)
        var request = request
        let body = try await request.jsonBody(limit: 1 << 20)
        try await catalog.replace(id, with: try decodeAutomation(body, id: id))
        return Response(status: .noContent)
    }

    func patch(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.admin)
        let id = try id(context)
        var request = request
        let body = try await request.jsonBody(limit: 1 << 16)
        guard case .object(let object) = body else { throw APIError(.unprocessableContent, "the body must be {\"enabled\": true|false}") }
        if let unknown = object.keys.first(where: { $0 != "enabled" }) {
            throw APIError(.unprocessableContent, "\(unknown): unknown field; only \"enabled\" can be patched")
        }
        guard case .bool(let enabled)? = object["enabled"] else { throw APIError(.unprocessableContent, "enabled: must be true or false") }
        try await catalog.setEnabled(id, enabled)
        return Response(status: .noContent)
    }

    func delete(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.admin)
        try await catalog.delete(try id(context))
        return Response(status: .noContent)
    }

    /// Applies Prefect's `AutomationFilter` (name / id `any_`, tags `all_`) plus sort, offset and limit.
    func filtered(_ body: JSONValue) async throws -> [AutomationCatalog.Entry] {
        var entries = await catalog.all()
        guard case .object = body else { throw APIError(.unprocessableContent, "the body must be a JSON object, not \(body.kindDescription)") }
        let filter = body["automations"]
        if let filter, filter != .null, filter.objectValue == nil {
            throw APIError(.unprocessableContent, "automations: must be an object, not \(filter.kindDescription)")
        }
        /// A list of strings at `automations.<field>.<operator>`; 422 naming it when it is something else.
        func strings(_ field: String, _ operation: String) throws -> [String]? {
            guard let value = filter?[field]?[operation], value != .null else { return nil }
            guard case .array(let list) = value, list.allSatisfy({ $0.stringValue != nil }) else {
                throw APIError(.unprocessableContent, "automations.\(field).\(operation): must be a list of strings, not \(value.kindDescription)")
            }
            return list.compactMap(\.stringValue)
        }
        if let names = try strings("name", "any_") {
            let wanted = Set(names)
            entries = entries.filter { wanted.contains($0.automation.name) }
        }
        if let ids = try strings("id", "any_") {
            var wanted = Set<UUID>()
            for (index, text) in ids.enumerated() {
                guard let id = UUID(text: text) else { throw APIError(.unprocessableContent, "automations.id.any_[\(index)]: \"\(text.prefix(64))\" is not a UUID") }
                wanted.insert(id)
            }
            entries = entries.filter { wanted.contains($0.automation.id) }
        }
        if let tags = try strings("tags", "all_") {
            let wanted = Set(tags)
            entries = entries.filter { wanted.isSubset(of: Set($0.automation.tags)) }
        }
        switch body["sort"]?.stringValue ?? "NAME_ASC" {
        case "CREATED_DESC": entries.sort { $0.created > $1.created }
        case "UPDATED_DESC": entries.sort { $0.updated > $1.updated }
        case "NAME_DESC": entries.sort { $0.automation.name > $1.automation.name }
        default: entries.sort { $0.automation.name < $1.automation.name }
        }
        let offset = try body["offset"]?.wholeNumber("offset", maximum: Int(Int32.max)) ?? 0
        let limit = try body["limit"]?.wholeNumber("limit", maximum: Int(Int32.max)) ?? entries.count
        return Array(entries.dropFirst(offset).prefix(limit))
    }

    func filter(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        var request = request
        let body = try await request.optionalJSONBody(limit: 1 << 20)
        return jsonResponse(.array(try await filtered(body).map(\.jsonValue)))
    }

    func count(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        var request = request
        var body = try await request.optionalJSONBody(limit: 1 << 20)
        if case .object(var object) = body {
            object["limit"] = nil
            object["offset"] = nil
            body = .object(object)
        }
        return jsonResponse(.int(Int64(try await filtered(body).count)))
    }

    /// Automations owned by the resource, or whose triggers name it in `match` / `match_related`.
    func related(to resource: String) async -> [AutomationCatalog.Entry] {
        await catalog.all().filter { entry in
            if entry.automation.ownerResource == resource { return true }
            return entry.automation.trigger.eventTriggers.contains { trigger in
                ([trigger.match] + trigger.matchRelated).contains { spec in
                    spec.entries.contains { $0.label == Resource.idLabel && $0.patterns.contains { $0.matches(resource) && !$0.negated } }
                }
            }
        }
    }

    /// The resource id that ends the path (slashes included, percent-escapes decoded).
    func resourceID(_ context: TriplineRequestContext) throws -> String {
        let raw = context.parameters.getCatchAll().joined(separator: "/")
        let id = raw.removingPercentEncoding ?? raw
        guard !id.isEmpty else { throw APIError(.unprocessableContent, "resource_id: missing at the end of the path") }
        return id
    }

    func relatedTo(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let resource = try resourceID(context)
        return jsonResponse(.array(await related(to: resource).map(\.jsonValue)))
    }

    func deleteOwnedBy(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.admin)
        let resource = try resourceID(context)
        for entry in await catalog.all() where entry.automation.ownerResource == resource && entry.sourceFile == nil {
            try await catalog.delete(entry.automation.id)
        }
        return Response(status: .accepted)
    }
}
