internal import TriplineCore

/// `call-webhook`: an HTTP call to a webhook destination with a templated body and headers, the destination's
/// method (or the action's), its timeout, and the entry's `Idempotency-Key`. Private and loopback addresses are
/// refused unless the destination has `allow_private_network: true`.
public struct CallWebhookHandler: ActionHandler {
    public var actionTypes: [String] { ["call-webhook"] }

    let http: HTTPTarget

    /// Creates the handler.
    public init(http: HTTPTarget) {
        self.http = http
    }

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        let destination = try execution.destination(of: [.webhook])
        let url = try execution.secret(destination.url, field: "url", of: destination)
        if !destination.allowPrivateNetwork, await NetworkPolicy.isPrivate(url: url) {
            throw ActionFailure.configuration(
                "destination \"\(destination.name)\" points at a private or loopback address; set allow_private_network: true to allow it")
        }
        var headers: [(String, String)] = [("Idempotency-Key", execution.idempotencyKey)]
        var body: String?
        switch execution.action.fields["payload"] {
        case .string(let template)?: body = try execution.render(template, field: "payload")
        case .object(let object)?:
            body = try execution.renderJSON(.object(object), field: "payload").jsonText
            headers.append(("Content-Type", "application/json"))
        default: body = nil
        }
        for (name, value) in destination.headers.sorted(by: { $0.key < $1.key }) {
            headers.append((name, try execution.environment.secrets.resolve(value, field: "destination \"\(destination.name)\" headers.\(name)")))
        }
        if let extra = execution.action.fields["headers"]?.objectValue {
            for (name, value) in extra.sorted(by: { $0.key < $1.key }) {
                guard let template = value.stringValue else { throw ActionFailure(.permanent, "headers.\(name): must be a string") }
                headers.append((name, try execution.render(template, field: "headers.\(name)")))
            }
        }
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "text/plain; charset=utf-8")) }
        let method = execution.action.fields["method"]?.stringValue ?? destination.method
        var timeout = destination.timeout
        if let seconds = execution.action.fields["timeout"]?.number, seconds > 0 { timeout = TimeSpan(seconds: min(seconds, 300)) }
        let answer = try await http.send(
            method: method, url: url, headers: headers, body: method == "GET" ? nil : body, timeout: timeout, now: execution.environment.clock())
        guard (200..<300).contains(answer.status) else {
            throw ActionFailure.http(status: answer.status, reason: String(answer.body.prefix(200)), retryAfter: answer.retryAfter)
        }
        return ActionSuccess(statusCode: answer.status, details: ["destination": .string(destination.name)])
    }
}
