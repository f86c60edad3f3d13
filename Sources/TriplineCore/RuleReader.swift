extension RuleNode {
    /// The declarations of a rules file: one object, a list of them, or several YAML documents (each one or a list),
    /// with the path that locates each (`[2]`, `document 3`, `document 3[1]`). Empty documents are skipped.
    /// - Throws: The parse error, located by file:line:column.
    public static func declarations(_ text: String, file: String?) throws(TriplineError) -> [(node: RuleNode, path: String)] {
        let documents = try parseAll(text, file: file)
        var items: [(node: RuleNode, path: String)] = []
        for (documentIndex, document) in documents.enumerated() {
            let prefix = documents.count > 1 ? "document \(documentIndex + 1)" : ""
            switch document.kind {
            case .array(let list): items += list.enumerated().map { (node: $1, path: "\(prefix)[\($0)]") }
            case .null: continue
            default: items.append((node: document, path: prefix))
            }
        }
        return items
    }

    /// Decodes every declaration of a rules file with `decode`, keeping those decoded without a problem.
    /// - Returns: The decoded values and every problem found (a parse error alone when the text is not YAML/JSON).
    public static func decodeDeclarations<T>(
        _ text: String, file: String?, _ decode: (_ node: RuleNode, _ path: String, _ diagnostics: Diagnostics) -> T?
    ) -> (values: [T], errors: [TriplineError]) {
        let items: [(node: RuleNode, path: String)]
        do {
            items = try declarations(text, file: file)
        } catch {
            return ([], [error])
        }
        let diagnostics = Diagnostics()
        var values: [T] = []
        for (node, path) in items {
            let before = diagnostics.errors.count
            if let value = decode(node, path, diagnostics), diagnostics.errors.count == before { values.append(value) }
        }
        return (values, diagnostics.errors)
    }
}

/// Collects every problem found while reading rules, so that a user sees all of them at once.
public final class Diagnostics: @unchecked Sendable {
    // Not shared across threads: one instance lives for one decode call on one thread.

    /// The problems found, in the order found.
    public private(set) var errors: [TriplineError] = []

    /// Creates an empty collection.
    public init() {}

    /// Records a problem.
    public func report(_ error: TriplineError) { errors.append(error) }

    /// Records a problem about `node`.
    public func report(_ code: TriplineError.Code, _ reason: String, path: String, at node: RuleNode?, hint: String? = nil) {
        errors.append(TriplineError(code, reason, path: path, location: node?.location, hint: hint))
    }
}

/// Reads the members of one object of a rules document, remembering which were read so that the rest can be
/// reported as unknown fields. Shared by every kind of rules file (automations, webhooks, destinations, sources).
public struct ObjectReader {
    public let node: RuleNode
    public let path: String
    public let diagnostics: Diagnostics
    private let members: [(key: String, keyLocation: SourceLocation?, value: RuleNode)]
    private var used: Set<String> = []

    /// - Returns: `nil` (after reporting) when `node` is not an object.
    public init?(_ node: RuleNode, path: String, diagnostics: Diagnostics) {
        guard case .object(let members) = node.kind else {
            diagnostics.report(.invalidValue, "must be an object, not \(node.kindDescription)", path: path, at: node)
            return nil
        }
        self.node = node
        self.path = path
        self.diagnostics = diagnostics
        self.members = members
    }

    public func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Whether the object has `key` (even with a null value).
    public func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    /// The member `key`, or `nil` when absent.
    public mutating func optional(_ key: String) -> RuleNode? {
        used.insert(key)
        return members.first { $0.key == key }?.value
    }

    /// The member `key`; reports it as missing when absent or null.
    public mutating func required(_ key: String, hint: String? = nil) -> RuleNode? {
        used.insert(key)
        guard let value = members.first(where: { $0.key == key })?.value else {
            diagnostics.report(.missingField, "is required", path: childPath(key), at: node, hint: hint)
            return nil
        }
        if case .null = value.kind {
            diagnostics.report(.missingField, "is required and may not be null", path: childPath(key), at: value, hint: hint)
            return nil
        }
        return value
    }

    /// Reports every member that was not read, with the closest known field as a hint.
    public func rejectUnknown(known: [String]) {
        for member in members where !used.contains(member.key) {
            let suggestion = closest(to: member.key, in: known)
            let hint = suggestion.map { "did you mean \"\($0)\"?" } ?? "known fields: \(known.joined(separator: ", "))"
            diagnostics.report(
                TriplineError(
                    .unknownField, "unknown field \"\(member.key)\"", path: childPath(member.key),
                    location: member.keyLocation ?? member.value.location, hint: hint))
        }
    }

    // MARK: - Typed accessors

    public mutating func string(_ key: String, required isRequired: Bool = false) -> String? {
        guard let value = isRequired ? required(key) : optional(key) else { return nil }
        return Self.string(value, path: childPath(key), diagnostics: diagnostics, allowNull: !isRequired)
    }

    public mutating func bool(_ key: String) -> Bool? {
        guard let value = optional(key) else { return nil }
        switch value.kind {
        case .bool(let flag): return flag
        case .null: return nil
        default:
            diagnostics.report(.invalidValue, "must be true or false, not \(value.kindDescription)", path: childPath(key), at: value)
            return nil
        }
    }

    public mutating func int(_ key: String) -> Int? {
        guard let value = optional(key) else { return nil }
        return Self.int(value, path: childPath(key), diagnostics: diagnostics)
    }

    public mutating func stringList(_ key: String) -> [String]? {
        guard let value = optional(key) else { return nil }
        return Self.stringList(value, path: childPath(key), diagnostics: diagnostics)
    }

    public static func string(_ value: RuleNode, path: String, diagnostics: Diagnostics, allowNull: Bool = false) -> String? {
        switch value.kind {
        case .string(let text): return text
        case .null where allowNull: return nil
        default:
            diagnostics.report(.invalidValue, "must be a string, not \(value.kindDescription)", path: path, at: value)
            return nil
        }
    }

    public static func int(_ value: RuleNode, path: String, diagnostics: Diagnostics) -> Int? {
        switch value.kind {
        case .int(let number) where number >= Int64(Int32.min) && number <= Int64(Int32.max): return Int(number)
        case .double(let number) where number.rounded() == number && abs(number) < 2e9: return Int(number)
        case .null: return nil
        default:
            diagnostics.report(.invalidValue, "must be an integer, not \(value.kindDescription)", path: path, at: value)
            return nil
        }
    }

    public static func stringList(_ value: RuleNode, path: String, diagnostics: Diagnostics) -> [String]? {
        switch value.kind {
        case .null: return []
        case .array(let items):
            var strings: [String] = []
            for (index, item) in items.enumerated() {
                if let text = string(item, path: "\(path)[\(index)]", diagnostics: diagnostics) { strings.append(text) }
            }
            return strings
        default:
            diagnostics.report(.invalidValue, "must be a list of strings, not \(value.kindDescription)", path: path, at: value)
            return nil
        }
    }
}

/// The candidate nearest to `word` by edit distance, when it is near enough to be a likely typo.
public func closest(to word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= max(2, candidate.count / 3), best.map({ distance < $0.1 }) ?? true { best = (candidate, distance) }
    }
    return best?.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
