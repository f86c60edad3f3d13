internal import TriplineCore
internal import Foundation

/// `emit-event` (Tripline): a templated event into the event log, where automations see it like any other. Its id
/// derives from the entry's idempotency key, so a re-run stores it once.
public struct EmitEventHandler: ActionHandler {
    public var actionTypes: [String] { ["emit-event"] }

    /// Creates the handler.
    public init() {}

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        let fields = execution.action.fields
        let id = UUID(stableName: "emit-event:\(execution.idempotencyKey)")
        var object: [String: JSONValue] = [
            "id": .string(id.lowercasedText),
            "occurred": .string(execution.environment.clock().rfc3339),
            "event": .string(try execution.render("event") ?? ""),
            "resource": try execution.renderJSON(fields["resource"] ?? .object([:]), field: "resource"),
        ]
        if let related = fields["related"], related != .null { object["related"] = try execution.renderJSON(related, field: "related") }
        if let payload = fields["payload"], payload != .null { object["payload"] = try execution.renderJSON(payload, field: "payload") }
        let event: Event
        do {
            event = try Event.decode(.object(object))
        } catch {
            throw ActionFailure(.permanent, "the emitted event is not valid: \(error.message)")
        }
        do {
            try await execution.environment.events.emit([event])
        } catch {
            throw ActionFailure(.retriable, "the event log did not take the event: \(error)")
        }
        return ActionSuccess(
            related: [Resource([Resource.idLabel: "prefect.event.\(id.lowercasedText)", Resource.roleLabel: "emitted-event"])],
            details: ["event": .string(event.event)])
    }
}
