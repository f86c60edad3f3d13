extension Deployment {
    static let knownFields = ["name", "command", "working_directory", "environment", "timeout", "concurrency_limit", "flow_name", "description"]

    /// Reads the deployments of a rules file: one deployment, a list of them, or several YAML documents.
    /// - Returns: The deployments and every problem found, located by file:line:column. Deployments with problems are
    ///   left out.
    public static func load(text: String, file: String? = nil) -> (deployments: [Deployment], errors: [TriplineError]) {
        let loaded = RuleNode.decodeDeclarations(text, file: file) { node, path, diagnostics in decode(node, path: path, diagnostics: diagnostics) }
        return (loaded.values, loaded.errors)
    }

    /// Decodes one deployment, reporting every problem to `diagnostics`.
    public static func decode(_ node: RuleNode, path: String = "", diagnostics: Diagnostics) -> Deployment? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let name = reader.string("name", required: true)
        if let name, name.isEmpty || name.count > 100 || name.contains("/") || name.contains(where: \.isNewline) {
            diagnostics.report(
                .invalidValue, "must be 1 to 100 characters without '/' or line breaks", path: reader.childPath("name"), at: reader.optional("name"))
        }
        var command: [String] = []
        if let commandNode = reader.required("command", hint: "a list: [program, argument, ...], e.g. [python3, -c, \"print('hi')\"]") {
            if case .string = commandNode.kind {
                diagnostics.report(
                    .invalidValue, "must be a list of the program and its arguments, not one string", path: reader.childPath("command"),
                    at: commandNode,
                    hint: "write [sh, -c, \"...\"] to run a shell line")
            } else if let list = ObjectReader.stringList(commandNode, path: reader.childPath("command"), diagnostics: diagnostics) {
                if list.isEmpty || list[0].isEmpty {
                    diagnostics.report(.invalidValue, "must name a program", path: reader.childPath("command"), at: commandNode)
                }
                command = list
            }
        }
        var deployment = Deployment(name: name ?? "", command: command, source: node.location)
        if let directory = reader.string("working_directory") {
            if directory.isEmpty {
                diagnostics.report(
                    .invalidValue, "must not be empty", path: reader.childPath("working_directory"), at: reader.optional("working_directory"))
            }
            deployment.workingDirectory = directory
        }
        if let environment = reader.optional("environment") {
            if case .object(let members) = environment.kind {
                for member in members {
                    let memberPath = "\(reader.childPath("environment")).\(member.key)"
                    if member.key.isEmpty || member.key.contains("=") {
                        diagnostics.report(.invalidValue, "is not a valid environment variable name", path: memberPath, at: member.value)
                        continue
                    }
                    let text: String?
                    switch member.value.kind {
                    case .int(let number): text = String(number)
                    case .bool(let flag): text = String(flag)
                    case .double(let number): text = String(number)
                    default: text = ObjectReader.string(member.value, path: memberPath, diagnostics: diagnostics)
                    }
                    if let text { deployment.environment[member.key] = SecretValue(text) }
                }
            } else if case .null = environment.kind {
            } else {
                diagnostics.report(
                    .invalidValue, "must be a mapping of variable names to values or secret references", path: reader.childPath("environment"),
                    at: environment)
            }
        }
        if let timeoutNode = reader.optional("timeout") {
            if let span = Automation.decodeDuration(timeoutNode, path: reader.childPath("timeout"), diagnostics: diagnostics, allowNull: true) {
                if span <= .zero {
                    diagnostics.report(
                        .invalidValue, "must be more than 0 seconds (leave it out for no limit)", path: reader.childPath("timeout"), at: timeoutNode)
                } else {
                    deployment.timeout = span
                }
            }
        }
        if let limit = reader.int("concurrency_limit") {
            if limit < 1 || limit > 1000 {
                diagnostics.report(
                    .invalidValue, "must be from 1 to 1000", path: reader.childPath("concurrency_limit"), at: reader.optional("concurrency_limit"))
            } else {
                deployment.concurrencyLimit = limit
            }
        }
        if let flowName = reader.string("flow_name") {
            if flowName.isEmpty {
                diagnostics.report(.invalidValue, "must not be empty", path: reader.childPath("flow_name"), at: reader.optional("flow_name"))
            }
            deployment.flowName = flowName
        }
        deployment.description = reader.string("description") ?? ""
        reader.rejectUnknown(known: knownFields)
        return name == nil ? nil : deployment
    }
}
