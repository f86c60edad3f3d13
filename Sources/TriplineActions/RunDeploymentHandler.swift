internal import Foundation
internal import TriplineCore

/// `run-deployment` on a Prefect server (a `prefect` destination): `POST {api}/deployments/{id}/create_flow_run` with
/// the rendered parameters, a Scheduled state at now + `schedule_after`, `job_variables`, and the entry's idempotency
/// key, so that a repeated attempt returns the run created before instead of a second one. The deployment is named by
/// `deployment_id`, or by `deployment: flow/deployment`, resolved through `/deployments/name/...`.
///
/// Without a `destination` the action runs on Tripline's local runner (see ``LocalRunner``): the deployment is one
/// declared in `rules/deployments/`, named by `deployment` or `deployment_id`; the action succeeds once the flow run
/// is created, and the entry's idempotency key makes a retried action find that run instead of creating another.
public struct RunDeploymentHandler: ActionHandler {
    public var actionTypes: [String] { ["run-deployment"] }

    let http: HTTPTarget

    /// Creates the handler.
    public init(http: HTTPTarget) {
        self.http = http
    }

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        let fields = execution.action.fields
        if fields["source"]?.stringValue == "inferred" {
            throw ActionFailure.configuration("source: inferred needs a deployment on the triggering event, which Tripline does not infer; use source: selected")
        }
        guard fields["destination"] != nil else { return try await runLocally(execution) }
        let destination = try execution.destination(of: [.prefect])
        var api = try execution.secret(destination.url, field: "api_url", of: destination)
        while api.hasSuffix("/") { api.removeLast() }
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if destination.apiKey != nil {
            headers.append(("Authorization", "Bearer " + (try execution.secret(destination.apiKey, field: "api_key", of: destination))))
        }
        let now = execution.environment.clock()
        let deploymentID = try await resolveDeployment(execution, api: api, headers: headers, timeout: destination.timeout, now: now)

        var parameters: JSONValue = .object([:])
        if let given = fields["parameters"], given != .null { parameters = try execution.renderJSON(given, field: "parameters") }
        var delay = TimeSpan.zero
        if let seconds = fields["schedule_after"]?.number {
            delay = TimeSpan(seconds: seconds)
        } else if let text = fields["schedule_after"]?.stringValue, let span = TimeSpan(durationText: text) {
            delay = span
        }
        var body: [String: JSONValue] = [
            "state": ["type": "SCHEDULED", "name": "Scheduled", "state_details": ["scheduled_time": .string((now + delay).rfc3339)]],
            "parameters": parameters,
            "idempotency_key": .string(execution.idempotencyKey),
            "tags": ["tripline"],
        ]
        if let variables = fields["job_variables"], variables != .null { body["job_variables"] = try execution.renderJSON(variables, field: "job_variables") }
        let answer = try await http.send(
            method: "POST", url: "\(api)/deployments/\(deploymentID)/create_flow_run", headers: headers, body: JSONValue.object(body).jsonText,
            timeout: destination.timeout, now: now)
        guard (200..<300).contains(answer.status) else {
            let detail = (try? JSONValue.parse(answer.body))?["detail"].map { $0.stringValue ?? $0.jsonText } ?? String(answer.body.prefix(200))
            throw ActionFailure.http(status: answer.status, reason: "Prefect: \(detail.prefix(300))", retryAfter: answer.retryAfter)
        }
        let run = try? JSONValue.parse(answer.body)
        let runID = run?["id"]?.stringValue ?? ""
        var related = [Resource([Resource.idLabel: "prefect.deployment.\(deploymentID)", Resource.roleLabel: "target"])]
        if !runID.isEmpty {
            related.append(Resource([Resource.idLabel: "prefect.flow-run.\(runID)", Resource.roleLabel: "flow-run", Resource.nameLabel: run?["name"]?.stringValue ?? ""]))
        }
        return ActionSuccess(
            statusCode: answer.status, related: related,
            details: ["flow_run_id": .string(runID), "deployment_id": .string(deploymentID), "destination": .string(destination.name)])
    }

    /// The deployment's id: `deployment_id`, or `deployment: flow/deployment` looked up by name.
    func resolveDeployment(_ execution: ActionExecution, api: String, headers: [(String, String)], timeout: TimeSpan, now: Instant) async throws -> String {
        if let id = execution.action.fields["deployment_id"]?.stringValue, let uuid = UUID(text: id) { return uuid.lowercasedText }
        guard let name = try execution.render("deployment") else { throw ActionFailure.configuration("name the deployment with deployment_id or deployment") }
        let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ActionFailure(.permanent, "deployment: must be \"flow name/deployment name\", got \"\(name.prefix(80))\"")
        }
        func escape(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text }
        let answer = try await http.send(
            method: "GET", url: "\(api)/deployments/name/\(escape(parts[0]))/\(escape(parts[1]))", headers: headers, body: nil, timeout: timeout, now: now)
        guard (200..<300).contains(answer.status) else {
            if answer.status == 404 { throw ActionFailure(.permanent, "Prefect has no deployment named \"\(name)\"", statusCode: 404) }
            throw ActionFailure.http(status: answer.status, reason: "looking up deployment \"\(name)\"", retryAfter: answer.retryAfter)
        }
        guard let id = (try? JSONValue.parse(answer.body))?["id"]?.stringValue else {
            throw ActionFailure(.retriable, "Prefect's answer for deployment \"\(name)\" has no id")
        }
        return id
    }

    /// `run-deployment` on the local runner.
    func runLocally(_ execution: ActionExecution) async throws -> ActionSuccess {
        guard let runner = execution.environment.runner else {
            throw ActionFailure.configuration("run-deployment without a destination needs the local runner, which is not running here")
        }
        let deployment: Deployment
        if let text = execution.action.fields["deployment_id"]?.stringValue, let id = UUID(text: text) {
            guard let found = runner.deployment(id: id) else {
                throw ActionFailure.configuration("the local runner has no deployment with the id \(text.lowercased()) (declare it in rules/deployments/, or name a prefect destination)")
            }
            deployment = found
        } else if let name = try execution.render("deployment") {
            guard let found = runner.deployment(named: name) else {
                let known = runner.deploymentNames
                throw ActionFailure.configuration(
                    "no deployment named \"\(name.prefix(100))\" is declared in rules/deployments/" + (known.isEmpty ? "" : " (declared: \(known.joined(separator: ", ")))"))
            }
            deployment = found
        } else {
            throw ActionFailure.configuration("name the deployment with deployment or deployment_id")
        }
        var parameters: JSONValue = .object([:])
        if let given = execution.action.fields["parameters"], given != .null { parameters = try execution.renderJSON(given, field: "parameters") }
        let submitted: (run: FlowRun, created: Bool)
        do {
            submitted = try await runner.submit(deployment: deployment, parameters: parameters, idempotencyKey: execution.idempotencyKey, createdBy: execution.entry.id)
        } catch {
            throw ActionFailure(.retriable, "the local runner could not record the flow run: \(error)")
        }
        let run = submitted.run
        let runID = run.id.lowercasedText
        return ActionSuccess(
            related: [
                Resource([Resource.idLabel: "prefect.deployment.\(deployment.id.lowercasedText)", Resource.roleLabel: "target", Resource.nameLabel: deployment.name]),
                Resource([Resource.idLabel: "prefect.flow-run.\(runID)", Resource.roleLabel: "flow-run", Resource.nameLabel: run.name]),
            ],
            details: [
                "flow_run_id": .string(runID), "deployment_id": .string(deployment.id.lowercasedText), "runner": "local",
                "created": .bool(submitted.created),
            ])
    }
}
