internal import Foundation
internal import TriplineCore

/// `send-notification` to a Slack incoming webhook or to PagerDuty's Events API v2, chosen by the destination's kind.
public struct SendNotificationHandler: ActionHandler {
    public var actionTypes: [String] { ["send-notification"] }

    let http: HTTPTarget

    /// Creates the handler.
    public init(http: HTTPTarget) {
        self.http = http
    }

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        let destination = try execution.destination(of: [.slack, .pagerduty])
        switch destination.kind {
        case .pagerduty: return try await PagerDutyEvent.send(execution, to: destination, through: http)
        default: return try await SlackMessage.send(execution, to: destination, through: http)
        }
    }
}

/// A Slack incoming-webhook message: `{"text": ...}`, with Block Kit `blocks` when the action has them.
enum SlackMessage {
    /// The request body: `text` is the rendered body (after the subject, in bold, when there is one); `blocks` are
    /// rendered (every string in them is a template) and sent as given.
    static func body(_ execution: ActionExecution) throws -> JSONValue {
        let text = try execution.render("body") ?? ""
        var object: [String: JSONValue] = [:]
        if let subject = try execution.render("subject"), !subject.isEmpty {
            object["text"] = .string("*\(subject)*\n\(text)")
        } else {
            object["text"] = .string(text)
        }
        if let blocks = execution.action.fields["blocks"], blocks != .null {
            object["blocks"] = try execution.renderJSON(blocks, field: "blocks")
        }
        return .object(object)
    }

    /// Posts the message. Slack answers 200 with the body `ok` on success; anything else is a failure carrying
    /// Slack's error string (`invalid_payload`, `channel_is_archived`, ...). 429 and 5xx are retried.
    static func send(_ execution: ActionExecution, to destination: Destination, through http: HTTPTarget) async throws -> ActionSuccess {
        let url = try execution.secret(destination.url, field: "url", of: destination)
        let payload = try body(execution).jsonText
        let answer = try await http.send(
            method: "POST", url: url, headers: [("Content-Type", "application/json")], body: payload, timeout: destination.timeout,
            now: execution.environment.clock())
        let reply = answer.body.trimmingCharacters(in: .whitespacesAndNewlines)
        if answer.status == 200, reply == "ok" { return ActionSuccess(statusCode: 200, details: ["destination": .string(destination.name)]) }
        let reason = reply.isEmpty ? "Slack answered without an error string" : "Slack: \(reply.prefix(200))"
        if answer.status == 200 { throw ActionFailure(.permanent, "HTTP 200 without ok: \(reason)", statusCode: 200) }
        throw ActionFailure.http(status: answer.status, reason: reason, retryAfter: answer.retryAfter)
    }
}

/// A PagerDuty Events API v2 event (`trigger`, `acknowledge` or `resolve`).
enum PagerDutyEvent {
    static let defaultEndpoint = "https://events.pagerduty.com/v2/enqueue"

    /// The dedup key: the templated `dedup_key`, or one derived from the automation and the firing's `for_each`
    /// values, so that every firing of one bucket key updates the same incident.
    static func dedupKey(_ execution: ActionExecution) throws -> String {
        if let key = try execution.render("dedup_key"), !key.isEmpty { return key }
        let entry = execution.entry
        let values = entry.bucketingLabels.keys.sorted().compactMap { entry.bucketingLabels[$0] }
        return (["tripline", entry.automationID.lowercasedText] + values).joined(separator: "/")
    }

    /// The request body, in the documented field order's shape (`routing_key`, `event_action`, `dedup_key`, and
    /// for `trigger` the `payload` with `summary`, `source`, `severity` and the optional fields, plus `client`,
    /// `client_url`, `links`, `images`).
    static func body(_ execution: ActionExecution, routingKey: String) throws -> JSONValue {
        let action = try execution.render("event_action") ?? "trigger"
        guard ["trigger", "acknowledge", "resolve"].contains(action) else {
            throw ActionFailure(.permanent, "event_action: must be trigger, acknowledge or resolve, got \"\(action.prefix(40))\"")
        }
        var object: [String: JSONValue] = [
            "routing_key": .string(routingKey), "event_action": .string(action), "dedup_key": .string(try dedupKey(execution)),
        ]
        guard action == "trigger" else { return .object(object) }
        var payload: [String: JSONValue] = [
            "summary": .string(String((try execution.render("body") ?? "").prefix(1024))),
            "source": .string(try execution.render("source") ?? "tripline"),
            "severity": .string(try execution.render("severity") ?? "error"),
        ]
        guard ["critical", "error", "warning", "info"].contains(payload["severity"]?.stringValue ?? "") else {
            throw ActionFailure(.permanent, "severity: must be critical, error, warning or info")
        }
        for field in ["timestamp", "component", "group", "class"] {
            if let value = try execution.render(field) { payload[field] = .string(value) }
        }
        if let details = execution.action.fields["custom_details"], details != .null {
            payload["custom_details"] = try execution.renderJSON(details, field: "custom_details")
        }
        object["payload"] = .object(payload)
        for field in ["client", "client_url"] {
            if let value = try execution.render(field) { object[field] = .string(value) }
        }
        for field in ["links", "images"] {
            if let value = execution.action.fields[field], value != .null { object[field] = try execution.renderJSON(value, field: field) }
        }
        return .object(object)
    }

    /// Sends the event. 202 is success; 400 (invalid event) is not retried; 429 and 5xx are.
    static func send(_ execution: ActionExecution, to destination: Destination, through http: HTTPTarget) async throws -> ActionSuccess {
        let routingKey = try execution.secret(destination.routingKey, field: "routing_key", of: destination)
        let url = try destination.url.map { try execution.environment.secrets.resolve($0, field: "destination \"\(destination.name)\" url") }
            ?? defaultEndpoint
        let body = try body(execution, routingKey: routingKey)
        let answer = try await http.send(
            method: "POST", url: url, headers: [("Content-Type", "application/json")], body: body.jsonText, timeout: destination.timeout,
            now: execution.environment.clock())
        let reply = try? JSONValue.parse(answer.body)
        if (200..<300).contains(answer.status) {
            var details: [String: JSONValue] = ["destination": .string(destination.name), "event_action": body["event_action"] ?? .null]
            details["dedup_key"] = reply?["dedup_key"] ?? body["dedup_key"]
            return ActionSuccess(statusCode: answer.status, details: details)
        }
        var reason = "PagerDuty: " + (reply?["message"]?.stringValue ?? reply?["status"]?.stringValue ?? "no message")
        if case .array(let errors)? = reply?["errors"], !errors.isEmpty {
            reason += " (" + errors.compactMap(\.stringValue).joined(separator: "; ").prefix(300) + ")"
        }
        throw ActionFailure.http(status: answer.status, reason: reason.replacingOccurrences(of: routingKey, with: "<routing key>"), retryAfter: answer.retryAfter)
    }
}
