internal import Foundation
internal import HTTPTypes
internal import Hummingbird
internal import NIOCore
internal import TriplineActions
internal import TriplineCore

/// `/api/runs` (Tripline): the local runner's flow runs, each with its state, times, exit code and output.
struct RunRoutes {
    let store: any FlowRunStore
    let deployments: DeploymentDirectory

    func register(on router: Router<TriplineRequestContext>) {
        router.get("/api/runs") { request, context in try await list(request, context) }
        router.get("/api/runs/{id}") { request, context in try await show(request, context) }
        router.get("/api/runs/{id}/logs") { request, context in try await logs(request, context) }
        router.get("/api/runner/deployments") { _, context in
            try context.require(.read)
            return jsonResponse(.array(deployments.all.map(\.jsonValue)))
        }
    }

    func list(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let query = request.uri.queryParameters
        var deploymentID: UUID?
        if let text = query["deployment"].map(String.init) {
            guard let id = UUID(text: text) ?? deployments.value(named: text)?.id else {
                throw APIError(.unprocessableContent, "deployment: no deployment is named \"\(text)\" (give a name or an id)")
            }
            deploymentID = id
        }
        var states: [FlowRun.StateType]?
        if let text = query["state"].map(String.init) {
            var parsed: [FlowRun.StateType] = []
            for part in text.split(separator: ",") {
                guard let type = FlowRun.StateType(text: String(part)) else {
                    throw APIError(
                        .unprocessableContent,
                        "state: must be one of \(FlowRun.StateType.allCases.map(\.defaultName).joined(separator: ", ")), got \"\(part)\"")
                }
                parsed.append(type)
            }
            states = parsed
        }
        var limit = 50
        if let text = query["limit"].map(String.init) {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw APIError(.unprocessableContent, "limit: must be an integer from 1 to 1000")
            }
            limit = value
        }
        let runs = try await store.flowRuns(deploymentID: deploymentID, stateTypes: states, limit: limit, oldestFirst: false)
        return jsonResponse(.array(runs.map(\.jsonValue)))
    }

    func run(_ context: TriplineRequestContext) async throws -> FlowRun {
        let text = try context.parameters.require("id")
        guard let id = UUID(text: text) else { throw APIError(.unprocessableContent, "id: \"\(text)\" is not a flow run id (a UUID)") }
        guard let run = try await store.flowRun(id: id) else { throw APIError(.notFound, "Flow run not found") }
        return run
    }

    func show(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        var object = try await run(context).jsonValue.objectValue ?? [:]
        object["log_url"] = .string("/api/runs/\(try context.parameters.require("id").lowercased())/logs")
        return jsonResponse(.object(object))
    }

    /// The run's output as text; `?tail=N` gives its last N bytes.
    func logs(_ request: Request, _ context: TriplineRequestContext) async throws -> Response {
        try context.require(.read)
        let run = try await run(context)
        var tail: Int?
        if let text = request.uri.queryParameters["tail"].map(String.init) {
            guard let value = Int(text), value > 0 else { throw APIError(.unprocessableContent, "tail: must be a positive number of bytes") }
            tail = value
        }
        let path = run.logPath
        let tailBytes = tail
        let bytes: [UInt8] = await withCheckedContinuation { continuation in
            // File reads block: done on a dispatch queue, not on the cooperative pool.
            DispatchQueue.global().async {
                guard let handle = FileHandle(forReadingAtPath: path) else { return continuation.resume(returning: []) }
                defer { try? handle.close() }
                if let tailBytes, let end = try? handle.seekToEnd(), end > UInt64(tailBytes) {
                    try? handle.seek(toOffset: end - UInt64(tailBytes))
                } else {
                    try? handle.seek(toOffset: 0)
                }
                continuation.resume(returning: [UInt8]((try? handle.readToEnd()) ?? Data()))
            }
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
