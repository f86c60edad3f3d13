internal import Foundation
public import TriplineCore

extension RulesLoader {
    /// Loads the destinations declared under `destinations:` in the rules files under `paths`.
    /// - Returns: The destinations and every problem (including a name declared twice), located by file:line:column.
    public static func destinations(_ paths: [String]) throws(TriplineError) -> (destinations: [Destination], errors: [TriplineError]) {
        try declared(paths, kind: .destinations, noun: "destination", path: { "destinations.\($0)" }, name: \.name, source: \.source) {
            let loaded = Destination.load(text: $0, file: $1)
            return (loaded.destinations, loaded.errors)
        }
    }

    /// Loads the local runner's deployments declared in `deployments/` under `paths`.
    /// - Returns: The deployments and every problem (including a name declared twice), located by file:line:column.
    public static func deployments(_ paths: [String]) throws(TriplineError) -> (deployments: [Deployment], errors: [TriplineError]) {
        try declared(paths, kind: .deployments, noun: "deployment", path: { _ in "name" }, name: \.name, source: \.source) {
            let loaded = Deployment.load(text: $0, file: $1)
            return (loaded.deployments, loaded.errors)
        }
    }

    /// Loads the things of one kind declared by name, reporting a name declared twice.
    static func declared<T>(
        _ paths: [String], kind: Kind, noun: String, path: (String) -> String, name: (T) -> String, source: (T) -> SourceLocation?,
        load: (_ text: String, _ file: String) -> ([T], [TriplineError])
    ) throws(TriplineError) -> ([T], [TriplineError]) {
        var values: [T] = []
        var errors: [TriplineError] = []
        var seen: [String: SourceLocation?] = [:]
        for file in try classifiedRuleFiles(paths) where file.kind == kind {
            let (loaded, problems) = load(try text(file.path), file.path)
            errors += problems
            for value in loaded {
                if let previous = seen[name(value)] {
                    errors.append(
                        TriplineError(
                            .invalidValue, "another \(noun) is also named \"\(name(value))\"", path: path(name(value)), location: source(value),
                            hint: previous.map { "first declared at \($0)" }))
                    continue
                }
                seen[name(value)] = source(value)
                values.append(value)
            }
        }
        return (values, errors)
    }

    /// Checks what only the whole rules folder can tell: every action names a destination that is declared and of
    /// a kind the action can use, and every template field parses.
    /// - Parameters:
    ///   - check: Checks one template's syntax, throwing an error whose location is the line within the template.
    ///   - texts: The rules files' texts by path, used to find each template field's line.
    ///   - deployments: The local runner's deployments; when given, a `run-deployment` without a destination must name
    ///     one of them (a `deployment` name written without a template).
    public static func checkActions(
        _ automations: [Automation], destinations: [Destination], deployments: [Deployment]? = nil, check: (String) throws(TriplineError) -> Void,
        texts: [String: String] = [:]
    ) -> [TriplineError] {
        var errors: [TriplineError] = []
        let byName = Dictionary(destinations.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let deploymentNames = deployments.map { Set($0.map(\.name)) }
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
                if action.type == "run-deployment", action.fields["destination"] == nil, let deploymentNames,
                    let name = action.fields["deployment"]?.stringValue, !name.contains("{{"), !name.contains("{%"), !deploymentNames.contains(name)
                {
                    let hint =
                        closest(to: name, in: deploymentNames.sorted()).map { "did you mean \"\($0)\"?" }
                        ?? (deploymentNames.isEmpty ? "declare it in rules/deployments/, or name a prefect destination" : "declared: \(deploymentNames.sorted().joined(separator: ", "))")
                    errors.append(
                        TriplineError(
                            .invalidValue, "no deployment named \"\(name)\" is declared in deployments/ (without a destination, run-deployment runs it locally)",
                            path: "\(path).deployment", location: fieldNode("deployment")?.location ?? automation.source, hint: hint))
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
