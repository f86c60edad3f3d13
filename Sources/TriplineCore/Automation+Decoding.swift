internal import Foundation

extension Automation {
    /// The top-level fields an automation accepts.
    static let knownFields = [
        "id", "name", "description", "enabled", "tags", "trigger", "actions", "actions_on_trigger", "actions_on_resolve",
        "owner_resource", "created", "updated", "cooldown",
    ]

    /// Reads automations from a rules document: one automation object, a list of them, or several YAML documents.
    ///
    /// - Parameters:
    ///   - text: YAML or JSON text.
    ///   - file: The file name, used in locations and to derive stable ids.
    ///   - schemas: The action types to accept.
    ///   - idNamespace: What stable ids of automations without an `id` derive from together with their name;
    ///     defaults to `file`. Pass the path relative to the rules folder so that ids do not depend on where the
    ///     folder is mounted.
    /// - Returns: The automations and every problem found. Automations with problems are left out.
    public static func load(
        text: String, file: String? = nil, schemas: [ActionSchema] = ActionSchema.prefect, idNamespace: String? = nil
    ) -> (automations: [Automation], errors: [TriplineError]) {
        let diagnostics = Diagnostics()
        let documents: [RuleNode]
        do {
            documents = try RuleNode.parseAll(text, file: file)
        } catch {
            return ([], [error])
        }
        var automations: [Automation] = []
        var items: [(RuleNode, String)] = []
        for (documentIndex, document) in documents.enumerated() {
            // Destinations share the rules folder; `Destination.load` reads those documents.
            if Destination.isDestinationsDocument(document) { continue }
            let prefix = documents.count > 1 ? "document \(documentIndex + 1)" : ""
            switch document.kind {
            case .array(let list):
                for (index, item) in list.enumerated() { items.append((item, prefix.isEmpty ? "[\(index)]" : "\(prefix)[\(index)]")) }
            case .null:
                continue
            default:
                items.append((document, prefix))
            }
        }
        for (node, path) in items {
            let before = diagnostics.errors.count
            let automation = decode(node, path: path, diagnostics: diagnostics, schemas: schemas, file: file, idNamespace: idNamespace)
            if let automation, diagnostics.errors.count == before { automations.append(automation) }
        }
        var names: [String: SourceLocation?] = [:]
        for automation in automations {
            if let previous = names[automation.name] {
                diagnostics.report(
                    TriplineError(
                        .invalidAutomation, "another automation in this file is also named \"\(automation.name)\"", path: "name",
                        location: automation.source, hint: previous.map { "first declared at \($0)" }))
            }
            names[automation.name] = automation.source
        }
        return (automations, diagnostics.errors)
    }

    /// Decodes one automation in Prefect's API shape, reporting every problem to `diagnostics`.
    /// - Returns: The automation, or `nil` when it is too broken to build.
    public static func decode(
        _ node: RuleNode, path: String = "", diagnostics: Diagnostics, schemas: [ActionSchema] = ActionSchema.prefect, file: String? = nil,
        idNamespace: String? = nil
    ) -> Automation? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let name = reader.string("name", required: true)
        if let name, name.isEmpty { diagnostics.report(.invalidValue, "may not be empty", path: reader.childPath("name"), at: node) }
        var id: UUID?
        if let idNode = reader.optional("id"), let text = ObjectReader.string(idNode, path: reader.childPath("id"), diagnostics: diagnostics, allowNull: true) {
            id = UUID(text: text)
            if id == nil { diagnostics.report(.invalidValue, "must be a UUID", path: reader.childPath("id"), at: idNode) }
        }
        _ = reader.optional("created")
        _ = reader.optional("updated")
        let description = reader.string("description") ?? ""
        let enabled = reader.bool("enabled") ?? true
        let tags = reader.stringList("tags") ?? []
        let ownerResource = reader.string("owner_resource")
        var cooldown: TimeSpan?
        if let cooldownNode = reader.optional("cooldown") {
            cooldown = decodeDuration(cooldownNode, path: reader.childPath("cooldown"), diagnostics: diagnostics, allowNull: true)
            if let value = cooldown, value < .zero {
                diagnostics.report(.invalidValue, "must not be negative", path: reader.childPath("cooldown"), at: cooldownNode)
            }
        }
        let identity = id?.uuidString ?? "\(idNamespace ?? file ?? ""):\(name ?? "")"
        let automationID = id ?? UUID(stableName: "automation:\(identity)")
        var trigger: Trigger?
        if let triggerNode = reader.required("trigger", hint: "an automation needs a trigger, e.g. {type: event, expect: [...], posture: Reactive}") {
            trigger = decodeTrigger(triggerNode, path: reader.childPath("trigger"), diagnostics: diagnostics, idSeed: "\(identity):trigger")
        }
        var actions: [Action] = []
        if let actionsNode = reader.required("actions", hint: "use [] for none, or [{type: do-nothing}]") {
            actions = decodeActions(actionsNode, path: reader.childPath("actions"), diagnostics: diagnostics, schemas: schemas)
        }
        let onTrigger = reader.optional("actions_on_trigger").map {
            decodeActions($0, path: reader.childPath("actions_on_trigger"), diagnostics: diagnostics, schemas: schemas)
        } ?? []
        let onResolve = reader.optional("actions_on_resolve").map {
            decodeActions($0, path: reader.childPath("actions_on_resolve"), diagnostics: diagnostics, schemas: schemas)
        } ?? []
        reader.rejectUnknown(known: knownFields)
        guard let name, let trigger else { return nil }
        let automation = Automation(
            id: automationID, name: name, description: description, enabled: enabled, tags: tags, trigger: trigger, actions: actions,
            actionsOnTrigger: onTrigger, actionsOnResolve: onResolve, ownerResource: ownerResource, cooldown: cooldown, source: node.location)
        automation.validate(path: path, at: node, diagnostics: diagnostics)
        return automation
    }

    // MARK: - Triggers

    static let eventTriggerFields = [
        "type", "id", "match", "match_related", "after", "expect", "for_each", "posture", "threshold", "within", "match_payload",
    ]
    static let compoundTriggerFields = ["type", "id", "triggers", "require", "within"]
    static let sequenceTriggerFields = ["type", "id", "triggers", "within"]

    static func decodeTrigger(_ node: RuleNode, path: String, diagnostics: Diagnostics, idSeed: String) -> Trigger? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let type = reader.string("type") ?? "event"
        var id = UUID(stableName: idSeed)
        if let idNode = reader.optional("id"), let text = ObjectReader.string(idNode, path: reader.childPath("id"), diagnostics: diagnostics, allowNull: true) {
            if let parsed = UUID(text: text) { id = parsed } else {
                diagnostics.report(.invalidValue, "must be a UUID", path: reader.childPath("id"), at: idNode)
            }
        }
        switch type {
        case "event":
            return decodeEventTrigger(&reader, id: id).map(Trigger.event)
        case "compound", "sequence":
            var children: [Trigger] = []
            if let list = reader.required("triggers") {
                if case .array(let items) = list.kind {
                    if items.isEmpty {
                        diagnostics.report(
                            .invalidValue, "a \(type) trigger needs at least one child trigger", path: reader.childPath("triggers"), at: list,
                            hint: "list the triggers to combine under triggers:")
                    }
                    for (index, item) in items.enumerated() {
                        if let child = decodeTrigger(item, path: "\(reader.childPath("triggers"))[\(index)]", diagnostics: diagnostics, idSeed: "\(idSeed).\(index)") {
                            children.append(child)
                        }
                    }
                } else {
                    diagnostics.report(.invalidValue, "must be a list of triggers, not \(list.kindDescription)", path: reader.childPath("triggers"), at: list)
                }
            }
            var within: TimeSpan?
            if let withinNode = reader.optional("within") {
                within = decodeDuration(withinNode, path: reader.childPath("within"), diagnostics: diagnostics, allowNull: true)
                if let value = within, value < .zero {
                    diagnostics.report(.invalidValue, "must not be negative", path: reader.childPath("within"), at: withinNode)
                }
            }
            if type == "sequence" {
                reader.rejectUnknown(known: sequenceTriggerFields)
                return .sequence(SequenceTrigger(id: id, triggers: children, within: within))
            }
            var require = CompoundRequirement.all
            if let requireNode = reader.required("require", hint: "use \"any\", \"all\" or a number of child triggers") {
                switch requireNode.kind {
                case .string("any"): require = .any
                case .string("all"): require = .all
                case .int(let count):
                    require = .count(Int(clamping: count))
                    if count < 1 || count > Int64(children.count) {
                        diagnostics.report(
                            .invalidValue, "must be between 1 and the number of child triggers (\(children.count)), got \(count)",
                            path: reader.childPath("require"), at: requireNode, hint: "use \"any\", \"all\" or a count from 1 to \(children.count)")
                    }
                default:
                    diagnostics.report(
                        .invalidValue, "must be \"any\", \"all\" or a number, not \(requireNode.json.jsonText)", path: reader.childPath("require"),
                        at: requireNode)
                }
            }
            reader.rejectUnknown(known: compoundTriggerFields)
            return .compound(CompoundTrigger(id: id, triggers: children, require: require, within: within))
        default:
            let hint = closest(to: type, in: ["event", "compound", "sequence"]).map { "did you mean \"\($0)\"?" }
                ?? (type == "metric" ? "metric triggers exist only in Prefect Cloud" : "use event, compound or sequence")
            diagnostics.report(.unknownType, "unknown trigger type \"\(type)\"", path: reader.childPath("type"), at: node, hint: hint)
            return nil
        }
    }

    static func decodeEventTrigger(_ reader: inout ObjectReader, id: UUID) -> EventTrigger? {
        let diagnostics = reader.diagnostics
        let match = reader.optional("match").map { ResourceSpecification.decode($0, path: reader.childPath("match"), diagnostics: diagnostics) }
        var related: [ResourceSpecification] = []
        var relatedIsList = false
        if let relatedNode = reader.optional("match_related") {
            if case .array(let items) = relatedNode.kind {
                relatedIsList = true
                for (index, item) in items.enumerated() {
                    related.append(ResourceSpecification.decode(item, path: "\(reader.childPath("match_related"))[\(index)]", diagnostics: diagnostics))
                }
            } else {
                let spec = ResourceSpecification.decode(relatedNode, path: reader.childPath("match_related"), diagnostics: diagnostics)
                related = [spec]
            }
        }
        let after = reader.stringList("after") ?? []
        let expect = reader.stringList("expect") ?? []
        let forEach = reader.stringList("for_each") ?? []
        for (index, label) in forEach.enumerated() where label.hasPrefix("related:") {
            if label.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).count != 3 {
                diagnostics.report(
                    .invalidValue, "\"\(label)\" is not a valid related label reference", path: "\(reader.childPath("for_each"))[\(index)]",
                    at: reader.node, hint: "write related:<role>:<label>, e.g. related:deployment:prefect.resource.id")
            }
        }
        var posture = Posture.reactive
        if let postureNode = reader.required("posture", hint: "use Reactive (fire on events) or Proactive (fire on their absence)") {
            switch postureNode.kind {
            case .string(let text):
                if let value = Posture(rawValue: text) {
                    posture = value
                } else {
                    let hint = text == "Metric" ? "Metric triggers exist only in Prefect Cloud" : (closest(to: text, in: ["Reactive", "Proactive"]).map { "did you mean \"\($0)\"?" })
                    diagnostics.report(
                        .invalidValue, "must be \"Reactive\" or \"Proactive\", got \"\(text)\"", path: reader.childPath("posture"), at: postureNode, hint: hint)
                }
            default:
                diagnostics.report(.invalidValue, "must be \"Reactive\" or \"Proactive\"", path: reader.childPath("posture"), at: postureNode)
            }
        }
        let threshold = reader.int("threshold") ?? 1
        if threshold < 0 {
            diagnostics.report(.invalidValue, "must not be negative", path: reader.childPath("threshold"), at: reader.node)
        }
        var within = TimeSpan.zero
        if let withinNode = reader.optional("within") {
            if case .null = withinNode.kind {
                diagnostics.report(.invalidValue, "should be a number of seconds, not null", path: reader.childPath("within"), at: withinNode)
            } else if let value = decodeDuration(withinNode, path: reader.childPath("within"), diagnostics: diagnostics, allowNull: false) {
                within = value
                if value < .zero {
                    diagnostics.report(.invalidValue, "must not be negative", path: reader.childPath("within"), at: withinNode)
                } else if posture == .proactive, value > .zero, value < .seconds(10) {
                    diagnostics.report(
                        .invalidValue, "a Proactive trigger's within must be at least 10 seconds, got \(value)", path: reader.childPath("within"),
                        at: withinNode, hint: "use within: 10 or more; a Proactive trigger can only tell that events are missing over a window")
                }
            }
        }
        let matchPayload = reader.optional("match_payload").map {
            PayloadPredicate.decode($0, path: reader.childPath("match_payload"), diagnostics: diagnostics)
        }
        reader.rejectUnknown(known: eventTriggerFields)
        return EventTrigger(
            id: id, match: match ?? ResourceSpecification(), matchRelated: related, matchRelatedIsList: relatedIsList, after: after,
            expect: expect, forEach: forEach, posture: posture, threshold: threshold, within: within,
            matchPayload: matchPayload.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The longest duration a trigger accepts: ten years. Longer ones are mistakes (1e300), and time arithmetic on
    /// them would overflow.
    static let maximumDuration = TimeSpan.seconds(315_360_000)

    static func decodeDuration(_ node: RuleNode, path: String, diagnostics: Diagnostics, allowNull: Bool) -> TimeSpan? {
        var span: TimeSpan?
        switch node.kind {
        case .null where allowNull: return nil
        case .int(let seconds): span = .seconds(seconds)
        case .double(let seconds) where seconds.isFinite: span = TimeSpan(seconds: seconds)
        case .string(let text): span = TimeSpan(durationText: text)
        default: break
        }
        guard let span else {
            diagnostics.report(
                .invalidValue, "must be a number of seconds or a duration such as PT10M, got \(node.json.jsonText)", path: path, at: node)
            return nil
        }
        if span > maximumDuration {
            diagnostics.report(.invalidValue, "must be at most ten years (315360000 seconds), got \(node.json.jsonText)", path: path, at: node)
            return nil
        }
        return span
    }

    // MARK: - Actions

    static func decodeActions(_ node: RuleNode, path: String, diagnostics: Diagnostics, schemas: [ActionSchema]) -> [Action] {
        guard case .array(let items) = node.kind else {
            if case .null = node.kind { return [] }
            diagnostics.report(.invalidValue, "must be a list of actions, not \(node.kindDescription)", path: path, at: node)
            return []
        }
        var actions: [Action] = []
        for (index, item) in items.enumerated() {
            if let action = decodeAction(item, path: "\(path)[\(index)]", diagnostics: diagnostics, schemas: schemas) { actions.append(action) }
        }
        return actions
    }

    static func decodeAction(_ node: RuleNode, path: String, diagnostics: Diagnostics, schemas: [ActionSchema]) -> Action? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        guard let type = reader.string("type", required: true) else { return nil }
        guard let schema = schemas.first(where: { $0.type == type }) else {
            let names = schemas.map(\.type)
            let hint = closest(to: type, in: names).map { "did you mean \"\($0)\"?" } ?? "known action types: \(names.joined(separator: ", "))"
            diagnostics.report(.unknownType, "unknown action type \"\(type)\"", path: reader.childPath("type"), at: node, hint: hint)
            return nil
        }
        var fields: [String: JSONValue] = [:]
        for field in schema.fields + ActionSchema.commonFields {
            let fieldPath = reader.childPath(field.name)
            guard let value = field.required ? reader.required(field.name) : reader.optional(field.name) else { continue }
            if checkActionField(field, value, path: fieldPath, diagnostics: diagnostics) { fields[field.name] = value.json }
        }
        reader.rejectUnknown(known: ["type"] + (schema.fields + ActionSchema.commonFields).map(\.name))
        if ActionSchema.destinationTypes.contains(type), fields["destination"] == nil, fields["block_document_id"] == nil || fields["block_document_id"] == .null {
            diagnostics.report(
                .missingField, "is required", path: reader.childPath("destination"), at: node,
                hint: "name a destination declared under destinations: in rules/ (Prefect's block_document_id is accepted but cannot run here)")
        }
        if let targetField = ActionSchema.selectedTargetField[type], !(reader.has("source") && fields["source"] == nil) {
            let source = fields["source"]?.stringValue ?? "selected"
            let target = fields[targetField]
            let named = type == "run-deployment" && fields["deployment"]?.stringValue != nil
            if source == "selected", target == nil || target == .null, !named {
                diagnostics.report(
                    .missingField, "is required when source is \"selected\"", path: reader.childPath(targetField), at: node,
                    hint: "name the target with \(targetField), or use source: inferred")
            }
        }
        return Action(type: type, fields: fields)
    }

    static func checkActionField(_ field: ActionSchema.Field, _ value: RuleNode, path: String, diagnostics: Diagnostics) -> Bool {
        func fail(_ expected: String) -> Bool {
            diagnostics.report(.invalidValue, "must be \(expected), not \(value.json.jsonText.prefix(60))", path: path, at: value)
            return false
        }
        let json = value.json
        switch field.kind {
        case .string: return json.stringValue != nil ? true : fail("a string")
        case .optionalString: return json.stringValue != nil || json == .null ? true : fail("a string or null")
        case .uuid: return json.stringValue.flatMap(UUID.init(uuidString:)) != nil ? true : fail("a UUID")
        case .optionalUUID: return json == .null || json.stringValue.flatMap(UUID.init(uuidString:)) != nil ? true : fail("a UUID or null")
        case .bool: if case .bool = json { return true } else { return fail("true or false") }
        case .object: return json.objectValue != nil ? true : fail("an object")
        case .optionalObject: return json.objectValue != nil || json == .null ? true : fail("an object or null")
        case .nonNegativeSeconds:
            if let seconds = json.number, seconds >= 0 { return true }
            if let text = json.stringValue, let span = TimeSpan(durationText: text), span >= .zero { return true }
            return fail("a non-negative number of seconds")
        case .oneOf(let choices):
            if let text = json.stringValue, choices.contains(text) { return true }
            return fail("one of \(choices.joined(separator: ", "))")
        case .stringOrObject: return json.stringValue != nil || json.objectValue != nil ? true : fail("a string or an object")
        case .any: return true
        case .retryPolicy:
            guard let object = json.objectValue else { return fail("an object {max_attempts, backoff, max_backoff}") }
            for (key, member) in object {
                switch key {
                case "max_attempts":
                    guard let count = member.number, count >= 1, count <= 100, count.rounded() == count else {
                        diagnostics.report(.invalidValue, "must be an integer from 1 to 100", path: "\(path).max_attempts", at: value)
                        return false
                    }
                case "backoff", "max_backoff":
                    guard let seconds = member.number, seconds >= 0 else {
                        diagnostics.report(.invalidValue, "must be a non-negative number of seconds", path: "\(path).\(key)", at: value)
                        return false
                    }
                default:
                    diagnostics.report(
                        .unknownField, "unknown field \"\(key)\"", path: "\(path).\(key)", at: value, hint: "known fields: max_attempts, backoff, max_backoff")
                    return false
                }
            }
            return true
        }
    }
}
