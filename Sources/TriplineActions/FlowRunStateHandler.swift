internal import Foundation
internal import TriplineCore

/// Prefect's flow-run actions on a Prefect server's runs (a `prefect` destination): `cancel-flow-run`,
/// `suspend-flow-run`, `change-flow-run-state` (through `POST /flow_runs/{id}/set_state`), `resume-flow-run`
/// (`POST /flow_runs/{id}/resume`) and `delete-flow-run` (`DELETE /flow_runs/{id}`). The flow run is the one the
/// triggering event is about, found as Prefect finds it: the `for_each` label `prefect.resource.id`, else the event's
/// resource, else its first related `prefect.flow-run.*` resource.
///
/// Without a `destination` they act on the local runner's runs (see ``LocalRunner/changeState(_:to:)``): cancel
/// terminates the process and the run ends Cancelled; suspend stops the process group and resume continues it.
public struct FlowRunStateHandler: ActionHandler {
    public var actionTypes: [String] { ["cancel-flow-run", "suspend-flow-run", "resume-flow-run", "change-flow-run-state", "delete-flow-run"] }

    let http: HTTPTarget

    /// Creates the handler.
    public init(http: HTTPTarget) {
        self.http = http
    }

    /// The flow run id the entry's firing is about.
    static func flowRunID(_ entry: OutboxEntry) -> String? {
        let prefix = "prefect.flow-run."
        var candidates: [String] = []
        if let label = entry.bucketingLabels[Resource.idLabel] { candidates.append(label) }
        if let event = entry.triggeringEvent {
            candidates.append(event.resource.id)
            candidates += event.related.map(\.id)
        }
        for candidate in candidates where candidate.hasPrefix(prefix) {
            let id = String(candidate.dropFirst(prefix.count))
            if let uuid = UUID(text: id) { return uuid.lowercasedText }
        }
        return nil
    }

    /// The `set_state` body for the action, or `nil` for actions that use another endpoint.
    static func stateBody(_ execution: ActionExecution) throws -> JSONValue? {
        let fields = execution.action.fields
        switch execution.action.type {
        case "cancel-flow-run":
            let message = JSONValue.string("Cancelled by automation \(execution.entry.automationName)")
            return ["state": ["type": "CANCELLING", "name": "Cancelling", "message": message], "force": false]
        case "suspend-flow-run":
            return ["state": ["type": "PAUSED", "name": "Suspended", "state_details": ["pause_reschedule": true]], "force": false]
        case "change-flow-run-state":
            guard let type = fields["state"]?.stringValue else { throw ActionFailure.configuration("state is required") }
            var state: [String: JSONValue] = ["type": .string(type), "name": .string(try execution.render("name") ?? type.capitalized)]
            if let message = try execution.render("message") { state["message"] = .string(message) }
            if case .bool(let force)? = fields["force"] { return ["state": .object(state), "force": .bool(force)] }
            return ["state": .object(state), "force": false]
        default:
            return nil
        }
    }

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        guard execution.action.fields["destination"] != nil else { return try await runLocally(execution) }
        let destination = try execution.destination(of: [.prefect])
        guard let runID = Self.flowRunID(execution.entry) else {
            throw ActionFailure(.permanent, "the triggering event names no flow run (prefect.flow-run.<id>)")
        }
        var api = try execution.secret(destination.url, field: "api_url", of: destination)
        while api.hasSuffix("/") { api.removeLast() }
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if destination.apiKey != nil {
            headers.append(("Authorization", "Bearer " + (try execution.secret(destination.apiKey, field: "api_key", of: destination))))
        }
        let method: String
        let url: String
        var body: String?
        switch execution.action.type {
        case "resume-flow-run":
            (method, url, body) = ("POST", "\(api)/flow_runs/\(runID)/resume", "{}")
        case "delete-flow-run":
            (method, url) = ("DELETE", "\(api)/flow_runs/\(runID)")
        default:
            (method, url) = ("POST", "\(api)/flow_runs/\(runID)/set_state")
            body = try Self.stateBody(execution)?.jsonText
        }
        let answer = try await http.send(
            method: method, url: url, headers: headers, body: body, timeout: destination.timeout, now: execution.environment.clock())
        guard (200..<300).contains(answer.status) else {
            let detail = (try? JSONValue.parse(answer.body))?["detail"].map { $0.stringValue ?? $0.jsonText } ?? String(answer.body.prefix(200))
            throw ActionFailure.http(status: answer.status, reason: "Prefect: \(detail.prefix(300))", retryAfter: answer.retryAfter)
        }
        // set_state answers 200/201 with {"status": "ACCEPT" | "REJECT" | "ABORT" | "WAIT", "details": ...}.
        if let status = (try? JSONValue.parse(answer.body))?["status"]?.stringValue, status == "REJECT" || status == "ABORT" {
            throw ActionFailure(.permanent, "Prefect refused the state change (\(status))", statusCode: answer.status)
        }
        return ActionSuccess(
            statusCode: answer.status,
            related: [Resource([Resource.idLabel: "prefect.flow-run.\(runID)", Resource.roleLabel: "target"])],
            details: ["flow_run_id": .string(runID), "destination": .string(destination.name)])
    }

    /// The action on a run of the local runner.
    func runLocally(_ execution: ActionExecution) async throws -> ActionSuccess {
        guard let runner = execution.environment.runner else {
            throw ActionFailure.configuration("\(execution.action.type) without a destination needs the local runner, which is not running here")
        }
        guard let runID = Self.flowRunID(execution.entry) else {
            throw ActionFailure(.permanent, "the triggering event names no flow run (prefect.flow-run.<id>)")
        }
        guard let uuid = UUID(text: runID), try await runner.isLocalRun(uuid) else {
            throw ActionFailure(.permanent, "flow run \(runID) is not a run of the local runner; name a prefect destination to act on a Prefect server's runs")
        }
        let now = execution.environment.clock()
        let target: FlowRun.State
        switch execution.action.type {
        case "cancel-flow-run":
            target = FlowRun.State(.cancelled, message: "Cancelled by automation \(execution.entry.automationName)", at: now)
        case "suspend-flow-run":
            target = FlowRun.State(.paused, name: "Suspended", message: "Suspended by automation \(execution.entry.automationName)", at: now)
        case "resume-flow-run":
            target = FlowRun.State(.running, message: "Resumed by automation \(execution.entry.automationName)", at: now)
        case "change-flow-run-state":
            guard let text = execution.action.fields["state"]?.stringValue, let type = FlowRun.StateType(text: text) else {
                throw ActionFailure.configuration("state must be one of \(FlowRun.StateType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            target = FlowRun.State(type, name: try execution.render("name"), message: try execution.render("message"), at: now)
        default:
            throw ActionFailure(.permanent, "\(execution.action.type) is not supported on the local runner's runs")
        }
        do {
            try await runner.changeState(uuid, to: target)
        } catch let refusal as LocalRunner.Refusal {
            throw ActionFailure(.permanent, refusal.description)
        } catch {
            throw ActionFailure(.retriable, "the local runner could not record the change: \(error)")
        }
        return ActionSuccess(
            related: [Resource([Resource.idLabel: "prefect.flow-run.\(runID)", Resource.roleLabel: "target"])],
            details: ["flow_run_id": .string(runID), "runner": "local", "state": .string(target.type.rawValue)])
    }
}
