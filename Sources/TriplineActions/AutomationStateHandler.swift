internal import TriplineCore
internal import Foundation

/// `pause-automation` and `resume-automation`: the automation named by `automation_id` (`source: selected`, the
/// default) or the one that fired (`source: inferred`).
public struct AutomationStateHandler: ActionHandler {
    public var actionTypes: [String] { ["pause-automation", "resume-automation"] }

    /// Creates the handler.
    public init() {}

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        guard let control = execution.environment.automations else { throw ActionFailure.configuration("automations cannot be changed here") }
        let fields = execution.action.fields
        let target: UUID
        if fields["source"]?.stringValue == "inferred" {
            target = execution.entry.automationID
        } else if let text = fields["automation_id"]?.stringValue, let id = UUID(text: text) {
            target = id
        } else {
            throw ActionFailure.configuration("automation_id is required when source is selected")
        }
        let enable = execution.action.type == "resume-automation"
        do {
            try await control.setEnabled(target, enable)
        } catch let error as TriplineError {
            throw ActionFailure(.permanent, error.description)
        }
        return ActionSuccess(
            related: [Resource([Resource.idLabel: "prefect.automation.\(target.lowercasedText)", Resource.roleLabel: "target"])],
            details: ["enabled": .bool(enable)])
    }
}
