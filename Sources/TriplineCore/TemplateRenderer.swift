/// Renders action-field templates. TriplineTemplates implements it; the action layer only sees this protocol.
public protocol TemplateRenderer: Sendable {
    /// Renders `template` with `context` (an object: `automation`, `event`, `firing`, `labels`).
    /// - Throws: A ``TriplineError`` naming the problem (syntax with its line, a size or loop limit, a render error).
    func render(_ template: String, context: JSONValue) throws(TriplineError) -> String
    /// Checks a template's syntax without rendering it.
    /// - Throws: A ``TriplineError`` whose location gives the line within the template.
    func check(_ template: String) throws(TriplineError)
}
