public import Foundation

extension FlowRun {
    /// The id of the event announcing the run's `transition`-th state: stable, so that announcing it twice stores it
    /// once.
    public static func stateEventID(run: UUID, transition: Int) -> UUID {
        UUID(stableName: "flow-run-state:\(run.lowercasedText):\(transition)")
    }

    /// The event announcing the run's current state, shaped as Prefect's server shapes it
    /// (`prefect.flow-run.<state name>` on `prefect.flow-run.<id>` with the state labels, the flow and the deployment
    /// as related resources, and `intended` / `initial_state` / `validated_state` in the payload).
    /// - Parameter previous: The state it left, if any.
    public func stateEvent(previous: State?) -> Event {
        let resource = Resource([
            Resource.idLabel: "prefect.flow-run.\(id.lowercasedText)",
            Resource.nameLabel: name,
            "prefect.run-count": started == nil ? "0" : "1",
            "prefect.state-message": String((state.message ?? "").prefix(100_000)),
            "prefect.state-name": state.name,
            "prefect.state-timestamp": state.timestamp.rfc3339,
            "prefect.state-type": state.type.rawValue,
        ])
        let related = [
            Resource([
                Resource.idLabel: "prefect.flow.\(flowID.lowercasedText)", Resource.roleLabel: "flow", Resource.nameLabel: flowName,
            ]),
            Resource([
                Resource.idLabel: "prefect.deployment.\(deploymentID.lowercasedText)", Resource.roleLabel: "deployment",
                Resource.nameLabel: deploymentName,
            ]),
            Resource([Resource.idLabel: "prefect.tag.tripline", Resource.roleLabel: "tag"]),
        ]
        let payload: [String: JSONValue] = [
            "intended": ["from": previous.map { .string($0.type.rawValue) } ?? .null, "to": .string(state.type.rawValue)],
            "initial_state": previous?.payload ?? .null,
            "validated_state": state.payload,
        ]
        // Like Prefect: the previous state's event is named as `follows` when the two are close in time.
        let follows = previous.flatMap { previous -> UUID? in
            guard transitions > 1, abs((state.timestamp - previous.timestamp).seconds) < 300 else { return nil }
            return Self.stateEventID(run: id, transition: transitions - 1)
        }
        return Event(
            id: Self.stateEventID(run: id, transition: transitions), occurred: state.timestamp, event: "prefect.flow-run.\(state.name)",
            resource: resource, related: related, payload: payload, follows: follows)
    }
}
