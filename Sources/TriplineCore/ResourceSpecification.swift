/// Which resources a trigger cares about: for every label listed, the resource's value must match at least one of
/// the label's patterns (AND over labels, OR within a list). Patterns are globs; a leading `!` negates one. A resource
/// lacking a listed label never matches, not even a negated pattern. An empty specification matches every resource.
public struct ResourceSpecification: Sendable, Hashable {
    /// One label and its alternative patterns.
    public struct Entry: Sendable, Hashable {
        /// The label name.
        public var label: String
        /// The alternatives; one must match.
        public var patterns: [LabelPattern]
        /// Whether the value was written as a list (kept so that the specification is written back as it was read).
        public var writtenAsList: Bool

        /// Creates an entry.
        public init(label: String, patterns: [LabelPattern], writtenAsList: Bool = false) {
            self.label = label
            self.patterns = patterns
            self.writtenAsList = writtenAsList || patterns.count != 1
        }
    }

    /// The labels, in the order written.
    public var entries: [Entry]

    /// Creates a specification.
    public init(_ entries: [Entry] = []) { self.entries = entries }

    /// Creates a specification from label → pattern(s).
    public init(_ labels: [String: [String]]) {
        self.entries = labels.keys.sorted().map { Entry(label: $0, patterns: labels[$0]!.map(LabelPattern.init), writtenAsList: true) }
    }

    /// Whether the specification lists no labels (and so matches everything).
    public var isEmpty: Bool { entries.isEmpty }

    /// Whether `resource` satisfies every label of the specification.
    @inline(__always)
    public func matches(_ resource: Resource) -> Bool {
        for entry in entries {
            let value = resource.labels[entry.label]
            var any = false
            for pattern in entry.patterns where pattern.matches(value) {
                any = true
                break
            }
            if !any { return false }
        }
        return true
    }

    /// Whether the specification is empty or some candidate satisfies it.
    public func includes(_ candidates: [Resource]) -> Bool {
        if entries.isEmpty { return true }
        for candidate in candidates where matches(candidate) { return true }
        return false
    }

    /// The first label of the specification that `resource` fails, if any.
    public func firstMismatch(in resource: Resource) -> Entry? {
        entries.first { entry in !entry.patterns.contains { $0.matches(resource.labels[entry.label]) } }
    }

    /// The single literal value required for `label`, when the specification pins it to exactly one value without
    /// wildcards or negation. Used to index triggers by resource id.
    public func literalValue(of label: String) -> String? {
        guard let entry = entries.first(where: { $0.label == label }), entry.patterns.count == 1, let pattern = entry.patterns.first,
            !pattern.negated, pattern.glob.isLiteral
        else { return nil }
        return pattern.glob.pattern
    }

    /// Prefect's `matches_every_resource_of_kind`: empty, or only `prefect.resource.id` with a value `<prefix>.*`.
    public func matchesEveryResource(ofKind prefix: String) -> Bool {
        if entries.isEmpty { return true }
        guard entries.count == 1, entries[0].label == Resource.idLabel else { return false }
        return entries[0].patterns.contains { $0.description == "\(prefix).*" }
    }

    /// The specification as JSON (`{"label": "pattern" | ["pattern", ...]}`).
    public var jsonValue: JSONValue {
        .object(
            Dictionary(
                entries.map { entry in
                    (
                        entry.label,
                        entry.writtenAsList ? .array(entry.patterns.map { .string($0.description) }) : .string(entry.patterns[0].description)
                    )
                }, uniquingKeysWith: { _, last in last }))
    }
}

extension ResourceSpecification {
    static func decode(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> ResourceSpecification {
        guard case .object(let members) = node.kind else {
            if case .null = node.kind { return ResourceSpecification() }
            diagnostics.report(.invalidValue, "must be an object of label: pattern(s), not \(node.kindDescription)", path: path, at: node)
            return ResourceSpecification()
        }
        var entries: [Entry] = []
        for member in members {
            let memberPath = "\(path)[\"\(member.key)\"]"
            switch member.value.kind {
            case .string(let pattern):
                entries.append(Entry(label: member.key, patterns: [LabelPattern(pattern)]))
            case .array(let items):
                var patterns: [LabelPattern] = []
                for (index, item) in items.enumerated() {
                    if case .string(let pattern) = item.kind {
                        patterns.append(LabelPattern(pattern))
                    } else {
                        diagnostics.report(
                            .invalidValue, "patterns must be strings, not \(item.kindDescription)", path: "\(memberPath)[\(index)]", at: item)
                    }
                }
                entries.append(Entry(label: member.key, patterns: patterns, writtenAsList: true))
            default:
                diagnostics.report(
                    .invalidValue, "must be a pattern string or a list of pattern strings, not \(member.value.kindDescription)",
                    path: memberPath, at: member.value,
                    hint: member.value.kindDescription == "a number" ? "quote the value: label values are strings" : nil)
            }
        }
        return ResourceSpecification(entries)
    }
}
