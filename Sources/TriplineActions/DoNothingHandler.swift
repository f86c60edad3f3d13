/// `do-nothing`: succeeds at once.
public struct DoNothingHandler: ActionHandler {
    public var actionTypes: [String] { ["do-nothing"] }

    /// Creates the handler.
    public init() {}

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess { ActionSuccess() }
}
