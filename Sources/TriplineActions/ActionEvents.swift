internal import Foundation
public import TriplineCore

/// Prefect's action events: `prefect.automation.action.triggered` for every attempt, then
/// `prefect.automation.action.executed` or `prefect.automation.action.failed`, on the automation's resource with
/// the triggering event as a related resource. Their ids derive from (entry, attempt), so storing them twice
/// stores them once.
public enum ActionEvents {
    /// The events of one attempt.
    public static func events(for entry: OutboxEntry, attempt: DeliveryAttempt, outcome: Result<ActionSuccess, ActionFailure>, now: Instant) -> [Event] {
        let automationResource = Resource([
            Resource.idLabel: "prefect.automation.\(entry.automationID.lowercasedText)", Resource.nameLabel: entry.automationName,
        ])
        var related: [Resource] = []
        if let event = entry.triggeringEvent {
            related.append(Resource([Resource.idLabel: "prefect.event.\(event.id.lowercasedText)", Resource.roleLabel: "triggering-event"]))
        }
        let payload: [String: JSONValue] = [
            "action_index": .int(Int64(entry.actionIndex)), "action_type": .string(entry.action.type), "invocation": .string(entry.idempotencyKey),
            "delivery": .string(entry.id), "attempt": .int(Int64(attempt.number)),
        ]
        let triggeredID = UUID(stableName: "action-event:\(entry.id):\(attempt.number):triggered")
        let triggered = Event(
            id: triggeredID, occurred: attempt.started, event: "prefect.automation.action.triggered", resource: automationResource, related: related,
            payload: payload)
        var resultPayload = payload
        var resultRelated = related
        let name: String
        switch outcome {
        case .success(let success):
            name = "prefect.automation.action.executed"
            resultRelated += success.related
            for (key, value) in success.details { resultPayload[key] = value }
            if let status = success.statusCode { resultPayload["status_code"] = .int(Int64(status)) }
        case .failure(let failure):
            name = "prefect.automation.action.failed"
            resultPayload["reason"] = .string(failure.reason)
            resultPayload["will_retry"] = .bool(attempt.outcome == .retry)
            if let status = failure.statusCode { resultPayload["status_code"] = .int(Int64(status)) }
        }
        let result = Event(
            id: UUID(stableName: "action-event:\(entry.id):\(attempt.number):result"), occurred: max(now, attempt.started), event: name,
            resource: automationResource, related: resultRelated, payload: resultPayload, follows: triggeredID)
        return [triggered, result]
    }
}
