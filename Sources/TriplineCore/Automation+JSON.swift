internal import Foundation

extension Automation {
    /// The automation in Prefect's API shape (without `created`/`updated`, which the store adds).
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(id.lowercasedText),
            "name": .string(name),
            "description": .string(description),
            "enabled": .bool(enabled),
            "tags": .array(tags.map(JSONValue.string)),
            "trigger": trigger.jsonValue,
            "actions": .array(actions.map(\.apiJSONValue)),
            "actions_on_trigger": .array(actionsOnTrigger.map(\.apiJSONValue)),
            "actions_on_resolve": .array(actionsOnResolve.map(\.apiJSONValue)),
        ]
        object["owner_resource"] = ownerResource.map(JSONValue.string) ?? .null
        if let cooldown { object["cooldown"] = Trigger.seconds(cooldown) }
        return .object(object)
    }
}

extension Trigger {
    /// The trigger in Prefect's API shape.
    public var jsonValue: JSONValue {
        switch self {
        case .event(let trigger):
            var object: [String: JSONValue] = [
                "type": "event",
                "id": .string(trigger.id.lowercasedText),
                "match": trigger.match.jsonValue,
                "match_related": trigger.matchRelatedIsList
                    ? .array(trigger.matchRelated.map(\.jsonValue)) : (trigger.matchRelated.first?.jsonValue ?? .object([:])),
                "after": .array(trigger.after.map(JSONValue.string)),
                "expect": .array(trigger.expect.map(JSONValue.string)),
                "for_each": .array(trigger.forEach.map(JSONValue.string)),
                "posture": .string(trigger.posture.rawValue),
                "threshold": .int(Int64(trigger.threshold)),
                "within": Self.seconds(trigger.within),
            ]
            if let predicate = trigger.matchPayload { object["match_payload"] = predicate.jsonValue }
            return .object(object)
        case .compound(let trigger):
            let require: JSONValue
            switch trigger.require {
            case .any: require = "any"
            case .all: require = "all"
            case .count(let count): require = .int(Int64(count))
            }
            return .object([
                "type": "compound", "id": .string(trigger.id.lowercasedText), "triggers": .array(trigger.triggers.map(\.jsonValue)),
                "require": require, "within": trigger.within.map(Self.seconds) ?? .null,
            ])
        case .sequence(let trigger):
            return .object([
                "type": "sequence", "id": .string(trigger.id.lowercasedText), "triggers": .array(trigger.triggers.map(\.jsonValue)),
                "within": trigger.within.map(Self.seconds) ?? .null,
            ])
        }
    }

    static func seconds(_ span: TimeSpan) -> JSONValue {
        span.microseconds % 1_000_000 == 0 ? .int(span.microseconds / 1_000_000) : .double(span.seconds)
    }
}
