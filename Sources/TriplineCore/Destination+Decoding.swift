extension Destination {
    static let knownFields = [
        "type", "url", "routing_key", "api_url", "api_key", "method", "headers", "allow_private_network", "timeout", "rate_limit",
        "brokers", "properties",
    ]

    /// Whether a rules document declares destinations (a mapping with the single key `destinations`).
    public static func isDestinationsDocument(_ node: RuleNode) -> Bool {
        guard case .object(let members) = node.kind else { return false }
        return members.contains { $0.key == "destinations" }
    }

    /// Reads the destinations of a rules file: documents of the form `destinations: {NAME: {type: ..., ...}}`.
    /// Other documents (automations) are skipped.
    /// - Returns: The destinations and every problem found, with file:line:column.
    public static func load(text: String, file: String? = nil) -> (destinations: [Destination], errors: [TriplineError]) {
        let documents: [RuleNode]
        do {
            documents = try RuleNode.parseAll(text, file: file)
        } catch {
            return ([], [error])
        }
        let diagnostics = Diagnostics()
        var destinations: [Destination] = []
        for document in documents where isDestinationsDocument(document) {
            guard var reader = ObjectReader(document, path: "", diagnostics: diagnostics) else { continue }
            guard let list = reader.required("destinations") else { continue }
            reader.rejectUnknown(known: ["destinations"])
            guard case .object(let members) = list.kind else {
                diagnostics.report(.invalidValue, "must be a mapping of destination names to settings", path: "destinations", at: list)
                continue
            }
            for member in members {
                let before = diagnostics.errors.count
                if let destination = decode(member.value, name: member.key, diagnostics: diagnostics), diagnostics.errors.count == before {
                    destinations.append(destination)
                }
            }
        }
        return (destinations, diagnostics.errors)
    }

    static func decode(_ node: RuleNode, name: String, diagnostics: Diagnostics) -> Destination? {
        let path = "destinations.\(name)"
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        guard let typeName = reader.string("type", required: true) else { return nil }
        guard let kind = Kind(rawValue: typeName) else {
            let names = Kind.allCases.map(\.rawValue)
            diagnostics.report(
                .unknownType, "unknown destination type \"\(typeName)\"", path: reader.childPath("type"), at: node,
                hint: closest(to: typeName, in: names).map { "did you mean \"\($0)\"?" } ?? "use one of \(names.joined(separator: ", "))")
            return nil
        }
        var destination = Destination(name: name, kind: kind, source: node.location)
        func secret(_ key: String, required: Bool) -> SecretValue? {
            guard let text = reader.string(key, required: required) else { return nil }
            let value = SecretValue(text)
            if !value.isReference {
                diagnostics.report(
                    .invalidValue, "is a secret and must be a reference, not a value written in the rules", path: reader.childPath(key), at: node,
                    hint: "write env:NAME (an environment variable) or file:PATH (a file holding it)")
                return nil
            }
            return value
        }
        func checkURL(_ text: String, key: String) {
            guard text.hasPrefix("http://") || text.hasPrefix("https://") else {
                diagnostics.report(.invalidValue, "must be an http:// or https:// URL, or a secret reference", path: reader.childPath(key), at: node)
                return
            }
        }
        switch kind {
        case .slack:
            destination.url = secret("url", required: true)
        case .pagerduty:
            destination.routingKey = secret("routing_key", required: true)
            if let url = reader.string("url") {
                checkURL(url, key: "url")
                destination.url = .literal(url)
            }
        case .webhook:
            if let url = reader.string("url", required: true) {
                let value = SecretValue(url)
                if !value.isReference { checkURL(url, key: "url") }
                destination.url = value
            }
            if let method = reader.string("method") {
                let upper = method.uppercased()
                if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(upper) {
                    destination.method = upper
                } else {
                    diagnostics.report(.invalidValue, "must be one of GET, POST, PUT, PATCH, DELETE", path: reader.childPath("method"), at: node)
                }
            }
            if let headers = reader.optional("headers") {
                if case .object(let members) = headers.kind {
                    for member in members {
                        if let text = ObjectReader.string(member.value, path: "\(reader.childPath("headers")).\(member.key)", diagnostics: diagnostics) {
                            let value = SecretValue(text)
                            // Credentials in headers are secrets: only by reference.
                            let name = member.key.lowercased()
                            let credential = ["authorization", "cookie", "token", "secret", "password", "api-key", "apikey", "signature"]
                                .contains { name.contains($0) }
                            if credential, !value.isReference {
                                diagnostics.report(
                                    .invalidValue, "a credential header must be a secret reference, `env:NAME` or `file:PATH`",
                                    path: "\(reader.childPath("headers")).\(member.key)", at: member.value,
                                    hint: "put \"Bearer …\" in an environment variable and write env:THAT_VARIABLE")
                            }
                            destination.headers[member.key] = value
                        }
                    }
                } else {
                    diagnostics.report(.invalidValue, "must be a mapping of header names to values", path: reader.childPath("headers"), at: headers)
                }
            }
            destination.allowPrivateNetwork = reader.bool("allow_private_network") ?? false
        case .prefect:
            // A literal URL, or a reference (the server's address usually differs between environments).
            if let url = reader.string("api_url", required: true) {
                let value = SecretValue(url)
                if !value.isReference { checkURL(url, key: "api_url") }
                destination.url = value
            }
            destination.apiKey = secret("api_key", required: false)
        case .kafka:
            let brokers = reader.stringList("brokers") ?? []
            if brokers.isEmpty {
                diagnostics.report(.missingField, "a kafka destination needs its brokers", path: reader.childPath("brokers"), at: node, hint: "brokers: [kafka-1:9092]")
            }
            destination.brokers = brokers
            if let properties = reader.optional("properties") {
                guard case .object(let members) = properties.kind else {
                    diagnostics.report(.invalidValue, "must be a mapping of librdkafka properties", path: reader.childPath("properties"), at: properties)
                    break
                }
                for member in members {
                    let path = "\(reader.childPath("properties")).\(member.key)"
                    let text: String
                    switch member.value.kind {
                    case .string(let value): text = value
                    case .int(let value): text = String(value)
                    case .bool(let value): text = String(value)
                    default:
                        diagnostics.report(.invalidValue, "must be a string, number or boolean", path: path, at: member.value)
                        continue
                    }
                    let value = SecretValue(text)
                    let name = member.key.lowercased()
                    if ["password", "secret", "key", "token", "jaas"].contains(where: { name.contains($0) }), !value.isReference, !name.hasSuffix(".location") {
                        diagnostics.report(
                            .invalidValue, "is a secret and must be a reference, `env:NAME` or `file:PATH`", path: path, at: member.value)
                        continue
                    }
                    destination.properties[member.key] = value
                }
            }
        }
        if kind != .kafka {
            for key in ["brokers", "properties"] where reader.has(key) {
                _ = reader.optional(key)
                diagnostics.report(.invalidValue, "applies only to kafka destinations", path: reader.childPath(key), at: node)
            }
        }
        if kind != .webhook {
            for key in ["method", "headers", "allow_private_network"] where reader.has(key) {
                _ = reader.optional(key)
                diagnostics.report(.invalidValue, "applies only to webhook destinations", path: reader.childPath(key), at: node)
            }
        }
        if kind != .pagerduty, kind != .webhook, kind != .slack, reader.has("url") {
            _ = reader.optional("url")
            diagnostics.report(
                .unknownField, kind == .kafka ? "a kafka destination names its brokers with brokers" : "a prefect destination names its server with api_url",
                path: reader.childPath("url"), at: node)
        }
        if let timeoutNode = reader.optional("timeout") {
            if let span = Automation.decodeDuration(timeoutNode, path: reader.childPath("timeout"), diagnostics: diagnostics, allowNull: false) {
                if span <= .zero || span > .seconds(300) {
                    diagnostics.report(.invalidValue, "must be more than 0 and at most 300 seconds", path: reader.childPath("timeout"), at: timeoutNode)
                } else {
                    destination.timeout = span
                }
            }
        }
        if let limitNode = reader.optional("rate_limit") {
            destination.rateLimit = decodeRateLimit(limitNode, path: reader.childPath("rate_limit"), diagnostics: diagnostics)
        }
        reader.rejectUnknown(known: knownFields)
        return destination
    }

    /// `rate_limit: {per_second: N}` / `{per_minute: N}`, optionally with `burst`; `rate_limit: none` disables it.
    static func decodeRateLimit(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> RateLimit? {
        if case .string("none") = node.kind { return RateLimit(count: 0, per: .seconds(1)) }
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let perSecond = reader.int("per_second")
        let perMinute = reader.int("per_minute")
        let burst = reader.int("burst")
        reader.rejectUnknown(known: ["per_second", "per_minute", "burst"])
        guard (perSecond == nil) != (perMinute == nil) else {
            diagnostics.report(.invalidValue, "give exactly one of per_second and per_minute", path: path, at: node, hint: "or write rate_limit: none")
            return nil
        }
        let count = perSecond ?? perMinute ?? 1
        guard count >= 1 else {
            diagnostics.report(.invalidValue, "must be at least 1", path: path, at: node)
            return nil
        }
        if let burst, burst < 1 { diagnostics.report(.invalidValue, "burst must be at least 1", path: path, at: node) }
        return RateLimit(count: count, per: perSecond != nil ? .seconds(1) : .seconds(60), burst: burst ?? 1)
    }
}
