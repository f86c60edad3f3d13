/// The registry of action handlers, by action type.
public struct ActionHandlers: Sendable {
    let byType: [String: any ActionHandler]

    /// Creates a registry of `handlers`; a later handler for the same type wins.
    public init(_ handlers: [any ActionHandler]) {
        var byType: [String: any ActionHandler] = [:]
        for handler in handlers { for type in handler.actionTypes { byType[type] = handler } }
        self.byType = byType
    }

    /// The handler for `type`.
    public func handler(for type: String) -> (any ActionHandler)? { byType[type] }

    /// Every action type with a handler.
    public var types: [String] { byType.keys.sorted() }

    /// Tripline's handlers. Adding an action type: one new `ActionHandler` file and one line here.
    public static func standard(http: HTTPTarget, kafka: KafkaProducerDirectory = KafkaProducerDirectory()) -> ActionHandlers {
        ActionHandlers([
            DoNothingHandler(),
            SendNotificationHandler(http: http),
            CallWebhookHandler(http: http),
            EmitEventHandler(),
            AutomationStateHandler(),
            RunDeploymentHandler(http: http),
            FlowRunStateHandler(http: http),
            KafkaProduceHandler(producers: kafka),
        ])
    }
}
