internal import Foundation
public import TriplineCore

extension RulesLoader {
    /// Loads the destinations declared under `destinations:` in the rules files under `paths`.
    /// - Returns: The destinations and every problem (including a name declared twice), located by file:line:column.
    public static func destinations(_ paths: [String]) throws(TriplineError) -> (destinations: [Destination], errors: [TriplineError]) {
        var destinations: [Destination] = []
        var errors: [TriplineError] = []
        var seen: [String: SourceLocation?] = [:]
        for file in try classifiedRuleFiles(paths) where file.kind == .destinations {
            let loaded = Destination.load(text: try text(file.path), file: file.path)
            errors += loaded.errors
            for destination in loaded.destinations {
                if let previous = seen[destination.name] {
                    errors.append(
                        TriplineError(
                            .invalidValue, "another destination is also named \"\(destination.name)\"", path: "destinations.\(destination.name)",
                            location: destination.source, hint: previous.map { "first declared at \($0)" }))
                    continue
                }
                seen[destination.name] = destination.source
                destinations.append(destination)
            }
        }
        return (destinations, errors)
    }

    /// Checks what only the whole rules folder can tell: every action names a destination that is declared and of
    /// a kind the action can use, and every template field parses.
    /// - Parameters:
    ///   - check: Checks one template's syntax, throwing an error whose location is the line within the template.
    ///   - texts: The rules files' texts by path, used to find each template field's line.
    public static func checkActions(
        _ automations: [Automation], destinations: [Destination], check: (String) throws(TriplineError) -> Void, texts: [String: String] = [:]
    ) -> [TriplineError] {
        var errors: [TriplineError] = []
        let byName = Dictionary(destinations.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for automation in automations {
            let lists = [("actions", automation.actions), ("actions_on_trigger", automation.actionsOnTrigger)]
            let entries = lists.flatMap { list, actions in actions.enumerated().map { (list: list, index: $0.offset, action: $0.element) } }
            for (list, index, action) in entries {
                let path = "\(list)[\(index)]"
                let fieldNode = { (field: String) -> RuleNode? in
                    list == "actions" ? fieldNodeFor(automation, actionIndex: index, field: field, texts: texts) : nil
                }
                if let name = action.fields["destination"]?.stringValue {
                    let kinds: Set<Destination.Kind> =
                        switch action.type {
                        case "call-webhook": [.webhook]
                        case "kafka-produce": [.kafka]
                        case "run-deployment", "cancel-flow-run", "delete-flow-run", "suspend-flow-run", "resume-flow-run", "change-flow-run-state":
                            [.prefect]
                        default: [.slack, .pagerduty]
                        }
                    if let destination = byName[name] {
                        if !kinds.contains(destination.kind) {
                            errors.append(
                                TriplineError(
                                    .invalidValue, "destination \"\(name)\" is a \(destination.kind.rawValue) destination; \(action.type) needs \(kinds.map(\.rawValue).sorted().joined(separator: " or "))",
                                    path: "\(path).destination", location: fieldNode("destination")?.location ?? automation.source))
                        }
                    } else {
                        let hint = byName.isEmpty ? "declare it under destinations: in a rules file" : "declared: \(byName.keys.sorted().joined(separator: ", "))"
                        errors.append(
                            TriplineError(
                                .invalidValue, "no destination named \"\(name)\" is declared", path: "\(path).destination",
                                location: fieldNode("destination")?.location ?? automation.source, hint: hint))
                    }
                }
                for (field, value) in action.fields.sorted(by: { $0.key < $1.key }) where !["destination", "retry", "block_document_id"].contains(field) {
                    for (subpath, template) in strings(in: value, path: field) {
                        do {
                            try check(template)
                        } catch {
                            errors.append(locate(error, field: "\(path).\(subpath)", node: fieldNode(field), automation: automation, texts: texts))
                        }
                    }
                }
            }
        }
        return errors
    }

    /// Every string inside a JSON value, with its path.
    static func strings(in value: JSONValue, path: String) -> [(String, String)] {
        switch value {
        case .string(let text): return [(path, text)]
        case .array(let items): return items.enumerated().flatMap { strings(in: $0.element, path: "\(path)[\($0.offset)]") }
        case .object(let object): return object.keys.sorted().flatMap { strings(in: object[$0]!, path: "\(path).\($0)") }
        default: return []
        }
    }

    /// Turns a template error (line within the template) into one at the file's line.
    static func locate(_ error: TriplineError, field: String, node: RuleNode?, automation: Automation, texts: [String: String]) -> TriplineError {
        var located = TriplineError(error.code, error.reason, path: field, location: node?.location ?? automation.source, hint: error.hint)
        if let node, let start = node.location, let inner = error.location {
            // A block scalar (`|` or `>`) starts on the line after its indicator; a quoted or plain one on its own line.
            var line = start.line + inner.line - 1
            if let file = start.file, let text = texts[file] {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                if start.line - 1 < lines.count {
                    let rest = lines[start.line - 1].dropFirst(max(0, start.column - 1))
                    if rest.hasPrefix("|") || rest.hasPrefix(">") { line += 1 }
                }
            }
            located.location = SourceLocation(file: start.file, line: line, column: inner.line == 1 ? start.column : 1)
            located.reason += " (line \(inner.line) of the template)"
        }
        return located
    }

    /// The node of `actions[index].field` of the automation, found again in its file.
    static func fieldNodeFor(_ automation: Automation, actionIndex: Int, field: String, texts: [String: String]) -> RuleNode? {
        guard let source = automation.source, let file = source.file, let text = texts[file],
            let documents = try? RuleNode.parseAll(text, file: file)
        else { return nil }
        var candidates: [RuleNode] = []
        for document in documents {
            if case .array(let items) = document.kind { candidates += items } else { candidates.append(document) }
        }
        guard let node = candidates.first(where: { $0.location == source }) else { return nil }
        guard case .object(let members) = node.kind, let actions = members.first(where: { $0.key == "actions" })?.value,
            case .array(let items) = actions.kind, actionIndex < items.count, case .object(let actionMembers) = items[actionIndex].kind
        else { return nil }
        return actionMembers.first { $0.key == field }?.value
    }
}
