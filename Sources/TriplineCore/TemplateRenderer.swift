public import Foundation

/// Renders action-field templates. TriplineTemplates implements it; the action layer only sees this protocol.
public protocol TemplateRenderer: Sendable {
    /// Renders `template` with `context` (an object: `automation`, `event`, `firing`, `labels`).
    /// - Throws: A ``TriplineError`` naming the problem (syntax with its line, a size or loop limit, a render error).
    func render(_ template: String, context: JSONValue) throws(TriplineError) -> String
    /// Checks a template's syntax without rendering it.
    /// - Throws: A ``TriplineError`` whose location gives the line within the template.
    func check(_ template: String) throws(TriplineError)
}

/// Sends events into the event log (the action layer's own events, and `emit-event`).
public protocol EventSink: Sendable {
    /// Stores `events` durably (and evaluates them like any other event).
    func emit(_ events: [Event]) async throws
}

/// Pauses and resumes automations (`pause-automation`, `resume-automation`).
public protocol AutomationControl: Sendable {
    /// Enables or disables the automation.
    /// - Throws: A ``TriplineError`` when there is no such automation.
    func setEnabled(_ automationID: UUID, _ enabled: Bool) async throws
}


