/// `match_payload`: conditions on the event payload, keyed by dot paths (`repository.full_name`, `commits.0.id`).
///
/// Same shape and semantics as `match`: every path must satisfy its condition (AND); a list of patterns is OR-ed;
/// patterns are globs with `!` negation; a missing path never matches (only `{"exists": false}` matches it).
/// A condition may also be an object of comparisons, all of which must hold:
/// `{"data.object.amount": {"gte": 1000, "lt": 5000}}` (`eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `exists`).
public struct PayloadPredicate: Sendable, Hashable {
    /// A comparison operator of the object form.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case eq, ne, gt, gte, lt, lte, exists
    }

    /// What one path must satisfy.
    public enum Condition: Sendable, Hashable {
        /// Glob patterns, one of which must match the value's text.
        case patterns([LabelPattern], writtenAsList: Bool)
        /// Comparisons that must all hold.
        case comparisons([(Operator, JSONValue)])

        public static func == (lhs: Condition, rhs: Condition) -> Bool {
            switch (lhs, rhs) {
            case (.patterns(let a, let la), .patterns(let b, let lb)): a == b && la == lb
            case (.comparisons(let a), .comparisons(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: false
            }
        }

        public func hash(into hasher: inout Hasher) {
            switch self {
            case .patterns(let patterns, _): hasher.combine(patterns)
            case .comparisons(let comparisons):
                for (op, value) in comparisons {
                    hasher.combine(op)
                    hasher.combine(value)
                }
            }
        }
    }

    /// One path and its condition.
    public struct Entry: Sendable, Hashable {
        /// The path as written.
        public var path: String
        /// The path split into object keys / array indices (`\.` escapes a dot inside a key).
        public var segments: [String]
        /// The condition.
        public var condition: Condition

        /// Creates an entry for a dot path (`\.` escapes a dot inside a key).
        public init(path: String, condition: Condition) {
            self.path = path
            self.segments = PayloadPredicate.split(path)
            self.condition = condition
        }
    }

    /// The paths, in the order written.
    public var entries: [Entry]

    /// Creates a predicate.
    public init(_ entries: [Entry]) { self.entries = entries }

    /// Whether the predicate has no conditions.
    public var isEmpty: Bool { entries.isEmpty }

    /// Whether `payload` satisfies every condition.
    public func matches(_ payload: [String: JSONValue]) -> Bool {
        firstMismatch(in: payload) == nil
    }

    /// The first entry `payload` fails, with the value found there (nil when the path is missing).
    public func firstMismatch(in payload: [String: JSONValue]) -> (entry: Entry, found: JSONValue?)? {
        for entry in entries {
            let value = Self.resolve(entry.segments, in: payload)
            if !Self.satisfies(entry.condition, value) { return (entry, value) }
        }
        return nil
    }

    /// Follows `segments` through objects (by key) and arrays (by index).
    public static func resolve(_ segments: [String], in payload: [String: JSONValue]) -> JSONValue? {
        guard let first = segments.first, var current = payload[first] else { return nil }
        for segment in segments.dropFirst() {
            switch current {
            case .object(let object):
                guard let next = object[segment] else { return nil }
                current = next
            case .array(let items):
                guard let index = Int(segment), index >= 0, index < items.count else { return nil }
                current = items[index]
            default:
                return nil
            }
        }
        return current
    }

    static func satisfies(_ condition: Condition, _ value: JSONValue?) -> Bool {
        switch condition {
        case .patterns(let patterns, _):
            guard let text = value.flatMap(Self.text(of:)) else { return false }
            return patterns.contains { $0.matches(text) }
        case .comparisons(let comparisons):
            return comparisons.allSatisfy { compare($0.0, value, $0.1) }
        }
    }

    /// The text a glob is matched against: strings as they are, numbers and booleans as written in JSON. Objects,
    /// arrays and null have no text and never match a glob.
    static func text(of value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .int, .double, .bool: value.jsonText
        case .null, .array, .object: nil
        }
    }

    static func compare(_ op: Operator, _ value: JSONValue?, _ operand: JSONValue) -> Bool {
        if op == .exists { return (value != nil) == (operand == .bool(true)) }
        guard let value else { return false }
        switch op {
        case .eq: return equal(value, operand)
        case .ne: return !equal(value, operand)
        case .gt, .gte, .lt, .lte:
            let order: Int
            if let left = value.number, let right = operand.number {
                order = left < right ? -1 : (left > right ? 1 : 0)
            } else if case .string(let left) = value, case .string(let right) = operand {
                order = left < right ? -1 : (left > right ? 1 : 0)
            } else {
                return false
            }
            switch op {
            case .gt: return order > 0
            case .gte: return order >= 0
            case .lt: return order < 0
            default: return order <= 0
            }
        case .exists: return false
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let left = a.number, let right = b.number { return left == right }
        return a == b
    }

    /// The predicate as JSON, in the form it was written.
    public var jsonValue: JSONValue {
        .object(
            Dictionary(
                entries.map { entry in
                    switch entry.condition {
                    case .patterns(let patterns, let asList):
                        (entry.path, asList ? .array(patterns.map { .string($0.description) }) : .string(patterns[0].description))
                    case .comparisons(let comparisons):
                        (entry.path, .object(Dictionary(comparisons.map { ($0.0.rawValue, $0.1) }, uniquingKeysWith: { _, last in last })))
                    }
                }, uniquingKeysWith: { _, last in last }))
    }

    /// Splits a dot path; `\.` is a literal dot inside a key.
    static func split(_ path: String) -> [String] {
        var segments: [String] = []
        var current = ""
        var escaped = false
        for char in path {
            if escaped {
                current.append(char)
                escaped = false
            } else if char == "\\" {
                escaped = true
            } else if char == "." {
                segments.append(current)
                current = ""
            } else {
                current.append(char)
            }
        }
        if escaped { current.append("\\") }
        segments.append(current)
        return segments
    }
}

extension PayloadPredicate {
    static func decode(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> PayloadPredicate {
        guard case .object(let members) = node.kind else {
            if case .null = node.kind { return PayloadPredicate([]) }
            diagnostics.report(
                .invalidValue, "must be an object of path: pattern(s) or path: {operator: value}, not \(node.kindDescription)", path: path,
                at: node)
            return PayloadPredicate([])
        }
        var entries: [Entry] = []
        for member in members {
            let memberPath = "\(path)[\"\(member.key)\"]"
            let segments = split(member.key)
            if member.key.isEmpty || segments.contains(where: \.isEmpty) {
                diagnostics.report(
                    .invalidValue, "\"\(member.key)\" is not a valid payload path", path: memberPath, at: member.value,
                    hint: "write paths as dot-separated keys and indices, e.g. repository.full_name or commits.0.id")
                continue
            }
            switch member.value.kind {
            case .string(let pattern):
                entries.append(Entry(path: member.key, condition: .patterns([LabelPattern(pattern)], writtenAsList: false)))
            case .array(let items):
                var patterns: [LabelPattern] = []
                for (index, item) in items.enumerated() {
                    if case .string(let pattern) = item.kind {
                        patterns.append(LabelPattern(pattern))
                    } else {
                        diagnostics.report(
                            .invalidValue, "patterns must be strings, not \(item.kindDescription)", path: "\(memberPath)[\(index)]", at: item,
                            hint: "to compare numbers or booleans use the object form, e.g. {\"eq\": 42}")
                    }
                }
                entries.append(Entry(path: member.key, condition: .patterns(patterns, writtenAsList: true)))
            case .object(let operators):
                var comparisons: [(Operator, JSONValue)] = []
                if operators.isEmpty {
                    diagnostics.report(.invalidValue, "needs at least one comparison", path: memberPath, at: member.value)
                }
                for op in operators {
                    guard let kind = Operator(rawValue: op.key) else {
                        diagnostics.report(
                            TriplineError(
                                .unknownField, "unknown comparison \"\(op.key)\"", path: "\(memberPath).\(op.key)",
                                location: op.keyLocation ?? op.value.location,
                                hint: "use one of \(Operator.allCases.map(\.rawValue).joined(separator: ", "))"))
                        continue
                    }
                    let operand = op.value.json
                    switch kind {
                    case .exists:
                        guard case .bool = operand else {
                            diagnostics.report(.invalidValue, "exists takes true or false", path: "\(memberPath).exists", at: op.value)
                            continue
                        }
                    case .gt, .gte, .lt, .lte:
                        guard operand.number != nil || operand.stringValue != nil else {
                            diagnostics.report(
                                .invalidValue, "\(op.key) compares with a number or a string, not \(operand.kindDescription)",
                                path: "\(memberPath).\(op.key)", at: op.value)
                            continue
                        }
                    case .eq, .ne:
                        break
                    }
                    comparisons.append((kind, operand))
                }
                entries.append(Entry(path: member.key, condition: .comparisons(comparisons)))
            default:
                diagnostics.report(
                    .invalidValue,
                    "must be a pattern, a list of patterns, or an object of comparisons, not \(member.value.kindDescription)",
                    path: memberPath, at: member.value, hint: "to compare a number write {\"eq\": \(member.value.json.jsonText)}")
            }
        }
        return PayloadPredicate(entries)
    }
}
