public import TriplineCore

extension KafkaSource {
    static let knownFields = [
        "name", "type", "enabled", "brokers", "topics", "topic_pattern", "group_id", "start", "format", "dead_letter_topic", "batch_size",
        "properties", "mapping",
    ]

    /// Reads Kafka sources from a rules document: one source, a list of them, or several YAML documents.
    /// - Returns: The sources and every problem found, located by file:line:column. Sources with problems are left out.
    public static func load(text: String, file: String? = nil) -> (sources: [KafkaSource], errors: [TriplineError]) {
        let loaded = RuleNode.decodeDeclarations(text, file: file) { node, path, diagnostics in decode(node, path: path, diagnostics: diagnostics) }
        return (loaded.values, loaded.errors)
    }

    /// Decodes one source, reporting every problem to `diagnostics`.
    public static func decode(_ node: RuleNode, path: String = "", diagnostics: Diagnostics) -> KafkaSource? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        if let typeNode = reader.optional("type"), let type = ObjectReader.string(typeNode, path: reader.childPath("type"), diagnostics: diagnostics),
            type != "kafka"
        {
            diagnostics.report(.unknownType, "unknown source type \"\(type)\"", path: reader.childPath("type"), at: typeNode, hint: "sources are of type kafka")
        }
        let name = reader.string("name", required: true)
        if let name, !isValidName(name) {
            diagnostics.report(.invalidValue, "must be 1 to 64 letters, digits, '-', '_' or '.'", path: reader.childPath("name"), at: reader.optional("name"))
        }
        var source = KafkaSource(name: name ?? "")
        source.location = node.location
        source.enabled = reader.bool("enabled") ?? true

        if let brokersNode = reader.required("brokers", hint: "a list of host:port, e.g. [127.0.0.1:9092]") {
            switch brokersNode.kind {
            case .string(let text): source.brokers = text.split(separator: ",").map { $0.trimmingCharacters(in: " ") }
            default: source.brokers = ObjectReader.stringList(brokersNode, path: reader.childPath("brokers"), diagnostics: diagnostics) ?? []
            }
            if source.brokers.isEmpty || source.brokers.contains(where: { !$0.contains(":") }) {
                diagnostics.report(.invalidValue, "must list brokers as host:port", path: reader.childPath("brokers"), at: brokersNode)
            }
        }
        source.topics = reader.stringList("topics") ?? []
        source.topicPattern = reader.string("topic_pattern")
        if source.topics.isEmpty == (source.topicPattern == nil) {
            diagnostics.report(
                .missingField, "give either `topics` (a list of names) or `topic_pattern` (a regular expression), not both", path: reader.childPath("topics"),
                at: reader.optional("topics") ?? node)
        }
        if source.topics.contains(where: { $0.isEmpty || $0.hasPrefix("^") }) {
            diagnostics.report(.invalidValue, "topic names may not be empty or start with ^ (use topic_pattern)", path: reader.childPath("topics"), at: reader.optional("topics"))
        }
        if let group = reader.string("group_id") {
            if group.isEmpty { diagnostics.report(.invalidValue, "may not be empty", path: reader.childPath("group_id"), at: reader.optional("group_id")) }
            source.groupID = group
        }
        if let start = reader.string("start") {
            switch start {
            case "earliest": source.startFromEarliest = true
            case "latest": source.startFromEarliest = false
            default:
                diagnostics.report(.invalidValue, "must be earliest or latest", path: reader.childPath("start"), at: reader.optional("start"))
            }
        }
        if let formatNode = reader.required("format", hint: "one of \(Format.allCases.map(\.rawValue).joined(separator: ", "))"),
            let text = ObjectReader.string(formatNode, path: reader.childPath("format"), diagnostics: diagnostics)
        {
            if let format = Format(rawValue: text) {
                source.format = format

            } else {
                diagnostics.report(
                    .unknownType, "unknown format \"\(text)\"", path: reader.childPath("format"), at: formatNode,
                    hint: "one of \(Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        source.deadLetterTopic = reader.string("dead_letter_topic")
        if let topic = source.deadLetterTopic, topic.isEmpty || source.topics.contains(topic) {
            diagnostics.report(
                .invalidValue, "must name a topic other than the ones read", path: reader.childPath("dead_letter_topic"), at: reader.optional("dead_letter_topic"))
        }
        if let size = reader.int("batch_size") {
            if (1...10_000).contains(size) {
                source.batchSize = size
            } else {
                diagnostics.report(.invalidValue, "must be between 1 and 10000", path: reader.childPath("batch_size"), at: reader.optional("batch_size"))
            }
        }
        let mappingNode = reader.optional("mapping")
        if source.format == .raw {
            if let mappingNode {
                source.mapping = decodeMapping(mappingNode, path: reader.childPath("mapping"), diagnostics: diagnostics)
            } else {
                diagnostics.report(
                    .missingField, "format raw needs a mapping", path: reader.childPath("mapping"), at: node,
                    hint: "mapping: {event: \"orders.{{ value.status }}\", resource: {prefect.resource.id: \"order.{{ key }}\"}}")
            }
        } else if let mappingNode {
            diagnostics.report(.invalidValue, "only format raw takes a mapping", path: reader.childPath("mapping"), at: mappingNode)
        }
        if let propertiesNode = reader.optional("properties") {
            source.properties = decodeProperties(propertiesNode, path: reader.childPath("properties"), diagnostics: diagnostics)
        }
        reader.rejectUnknown(known: knownFields)
        return name == nil ? nil : source
    }

    static func decodeMapping(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> RawMapping? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let event = reader.string("event", required: true)
        var labels: [String: String] = [:]
        if let resourceNode = reader.required("resource", hint: "labels, at least prefect.resource.id") {
            if case .object(let members) = resourceNode.kind {
                for member in members {
                    if let text = ObjectReader.string(member.value, path: "\(path).resource.\(member.key)", diagnostics: diagnostics) { labels[member.key] = text }
                }
                if labels[Resource.idLabel] == nil {
                    diagnostics.report(.missingField, "needs a prefect.resource.id label", path: reader.childPath("resource"), at: resourceNode)
                }
            } else {
                diagnostics.report(.invalidValue, "must be a mapping of labels to templates", path: reader.childPath("resource"), at: resourceNode)
            }
        }
        let id = reader.string("id")
        let occurred = reader.string("occurred")
        reader.rejectUnknown(known: ["event", "resource", "id", "occurred"])
        guard let event else { return nil }
        return RawMapping(event: event, resource: labels, id: id, occurred: occurred)
    }

    /// Properties the source sets itself: a rules file may not change them.
    static let reservedProperties: Set<String> = ["bootstrap.servers", "group.id", "enable.auto.offset.store", "auto.offset.reset"]

    static func decodeProperties(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> [String: PropertyValue] {
        guard case .object(let members) = node.kind else {
            diagnostics.report(.invalidValue, "must be a mapping of librdkafka properties to values", path: path, at: node)
            return [:]
        }
        var properties: [String: PropertyValue] = [:]
        for member in members {
            let propertyPath = "\(path).\(member.key)"
            if reservedProperties.contains(member.key) {
                diagnostics.report(
                    .invalidValue, "is set by the source itself", path: propertyPath, at: member.value,
                    hint: "use brokers, group_id and start; offsets are stored only after events are durable")
                continue
            }
            let text: String
            switch member.value.kind {
            case .string(let value): text = value
            case .int(let value): text = String(value)
            case .bool(let value): text = value ? "true" : "false"
            default:
                diagnostics.report(.invalidValue, "must be a string, number or boolean", path: propertyPath, at: member.value)
                continue
            }
            if text.hasPrefix("env:") || text.hasPrefix("file:") {
                do {
                    properties[member.key] = .secret(try SecretReference(parsing: text))
                } catch {
                    diagnostics.report(error.code, error.reason, path: propertyPath, at: member.value, hint: error.hint)
                }
            } else if isSecretProperty(member.key) {
                // The value is not echoed: it is a secret written where it must not be.
                diagnostics.report(
                    .invalidValue, "is a secret: write a reference, `env:NAME` or `file:PATH`, never the value", path: propertyPath, at: member.value,
                    hint: "put the secret in an environment variable and write env:THAT_VARIABLE")
            } else {
                properties[member.key] = .plain(text)
            }
        }
        return properties
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 45 || byte == 95 || byte == 46
            }
    }
}
