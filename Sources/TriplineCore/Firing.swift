public import Foundation

/// A trigger firing that reached its automation: the engine's output.
public struct Firing: Sendable, Hashable {
    /// Prefect's trigger states; Prefect OSS (and so Tripline) only ever emits `triggered`.
    public enum State: String, Sendable, Hashable {
        case triggered
        case resolved
    }

    /// A stable id derived from what fired, when and on what, so that replays and restarts name a firing alike.
    public var id: UUID
    /// The automation that fired.
    public var automationID: UUID
    /// Its name.
    public var automationName: String
    /// The automation's top-level trigger.
    public var triggerID: UUID
    /// Always `.triggered` for now.
    public var state: State
    /// The event that caused the firing: the counted event of a reactive firing, the window's last event of a
    /// proactive one (nil when the window saw none).
    public var triggeringEvent: Event?
    /// When the firing happened (event time in replay, the evaluation time for proactive firings).
    public var at: Instant
    /// The `for_each` labels and their values for the bucket that fired.
    public var bucketingLabels: [String: String]

    /// Creates a firing.
    public init(
        automationID: UUID, automationName: String, triggerID: UUID, state: State = .triggered, triggeringEvent: Event?, at: Instant,
        bucketingLabels: [String: String] = [:]
    ) {
        self.automationID = automationID
        self.automationName = automationName
        self.triggerID = triggerID
        self.state = state
        self.triggeringEvent = triggeringEvent
        self.at = at
        self.bucketingLabels = bucketingLabels
        let labels = bucketingLabels.keys.sorted().map { "\($0)=\(bucketingLabels[$0]!)" }.joined(separator: "\u{1f}")
        self.id = UUID(
            stableName: "firing:\(automationID):\(triggerID):\(at.microseconds):\(triggeringEvent?.id.uuidString ?? "-"):\(labels)")
    }

    /// The replay output line: `{"automation": ..., "state": ..., "triggering_event": ..., "at": ...}`.
    public var replayLine: String {
        var line = "{\"automation\":"
        JSONValue.writeString(automationName, to: &line)
        line += ",\"state\":\"\(state.rawValue)\",\"triggering_event\":"
        if let event = triggeringEvent { line += "\"\(event.id.lowercasedText)\"" } else { line += "null" }
        line += ",\"at\":\"\(at.rfc3339)\"}"
        return line
    }
}

extension Firing {
    /// Prefect's `prefect.automation.triggered` event for this firing: on resource `prefect.automation.<id>`, with the
    /// triggering event as a related resource (role `triggering-event`) and in the payload. Its id is the firing's id,
    /// so that storing it twice stores it once.
    /// - Parameter posture: The posture of the automation's trigger when it is an event trigger (Prefect adds it as
    ///   the `prefect.posture` label).
    public func stateChangeEvent(posture: Posture?) -> Event {
        var resource: [String: String] = [
            Resource.idLabel: "prefect.automation.\(automationID.lowercasedText)",
            Resource.nameLabel: automationName,
        ]
        if let posture { resource["prefect.posture"] = posture.rawValue }
        var related: [Resource] = []
        if let event = triggeringEvent {
            related.append(
                Resource([Resource.idLabel: "prefect.event.\(event.id.lowercasedText)", Resource.roleLabel: "triggering-event"]))
        }
        return Event(
            id: id, occurred: at, event: "prefect.automation.\(state.rawValue)", resource: Resource(resource), related: related,
            payload: [
                "triggering_labels": .object(bucketingLabels.mapValues(JSONValue.string)),
                "triggering_event": triggeringEvent?.jsonValue ?? .null,
            ])
    }
}
