internal import Yams

/// A value read from a rules file (YAML or JSON), with where each part of it was written, so that every error about
/// it can name a file, line and column.
public struct RuleNode: Sendable {
    /// The kind and content of the value.
    public indirect enum Kind: Sendable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
        case array([RuleNode])
        /// An object, with its keys in the order written.
        case object([(key: String, keyLocation: SourceLocation?, value: RuleNode)])
    }

    /// The value.
    public var kind: Kind
    /// Where the value starts in its source, when known.
    public var location: SourceLocation?

    /// Creates a node.
    public init(_ kind: Kind, location: SourceLocation? = nil) {
        self.kind = kind
        self.location = location
    }

    /// A short name for the kind of value ("a string", "an object"), for error messages.
    public var kindDescription: String { json.kindDescription }

    /// The value without locations.
    public var json: JSONValue {
        switch kind {
        case .null: .null
        case .bool(let value): .bool(value)
        case .int(let value): .int(value)
        case .double(let value): .double(value)
        case .string(let value): .string(value)
        case .array(let items): .array(items.map(\.json))
        case .object(let members): .object(Dictionary(members.map { ($0.key, $0.value.json) }, uniquingKeysWith: { _, last in last }))
        }
    }

    /// Builds a node without locations from a JSON value.
    public init(json: JSONValue) {
        switch json {
        case .null: self.init(.null)
        case .bool(let value): self.init(.bool(value))
        case .int(let value): self.init(.int(value))
        case .double(let value): self.init(.double(value))
        case .string(let value): self.init(.string(value))
        case .array(let items): self.init(.array(items.map(RuleNode.init(json:))))
        case .object(let object):
            self.init(.object(object.keys.sorted().map { (key: $0, keyLocation: nil, value: RuleNode(json: object[$0]!)) }))
        }
    }
}

// MARK: - Parsing

extension RuleNode {
    /// Parses a YAML or JSON document (JSON is read as YAML flow style, which keeps positions for every value).
    ///
    /// Scalars follow the YAML 1.2 core schema: only `true`/`false` are booleans, so `on`, `yes` and `no` stay
    /// strings; quoted scalars are always strings. The types are resolved here (``resolve(_:)``), so the parser gets
    /// Yams' basic resolver: its default one compiles seven regular expressions through ICU on first use, which maps
    /// about 3 MB of the ICU library into every process that reads a rules file.
    /// - Parameters:
    ///   - text: The document.
    ///   - file: The file name to put in locations.
    /// - Throws: A ``TriplineError`` with code `.invalidYAML` and the position of the syntax error.
    public static func parse(_ text: String, file: String? = nil) throws(TriplineError) -> RuleNode {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            throw Self.convert(error, file: file)
        } catch {
            throw TriplineError(.invalidYAML, "\(error)", location: SourceLocation(file: file, line: 1, column: 1))
        }
        guard let root else { return RuleNode(.null, location: SourceLocation(file: file, line: 1, column: 1)) }
        return try convert(root, file: file, depth: 0)
    }

    /// Parses every document of a multi-document YAML stream (`---` separated).
    public static func parseAll(_ text: String, file: String? = nil) throws(TriplineError) -> [RuleNode] {
        do {
            // Parser.nextRoot rather than compose_all, which stops silently at a syntax error.
            let parser = try Parser(yaml: text, resolver: .basic)
            var nodes: [RuleNode] = []
            while let node = try parser.nextRoot() {
                nodes.append(try convert(node, file: file, depth: 0))
            }
            return nodes
        } catch let error as TriplineError {
            throw error
        } catch let error as YamlError {
            throw Self.convert(error, file: file)
        } catch {
            throw TriplineError(.invalidYAML, "\(error)", location: SourceLocation(file: file, line: 1, column: 1))
        }
    }

    private static func convert(_ error: YamlError, file: String?) -> TriplineError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            var reason = problem
            if let context { reason += " (\(context.text))" }
            return TriplineError(.invalidYAML, reason, location: SourceLocation(file: file, line: mark.line, column: mark.column))
        case .composer(let context, let problem, let mark, _):
            var reason = problem
            if let context { reason += " (\(context.text))" }
            return TriplineError(.invalidYAML, reason, location: SourceLocation(file: file, line: mark.line, column: mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return TriplineError(
                .invalidValue, "duplicate key \(keys) in the mapping starting here", location: SourceLocation(file: file, line: context.mark.line, column: context.mark.column))
        default:
            return TriplineError(.invalidYAML, "\(error)", location: SourceLocation(file: file, line: 1, column: 1))
        }
    }

    private static func convert(_ node: Node, file: String?, depth: Int) throws(TriplineError) -> RuleNode {
        let location = node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
        guard depth < 64 else { throw TriplineError(.invalidValue, "nesting is deeper than 64 levels", location: location) }
        switch node {
        case .scalar(let scalar):
            return RuleNode(resolve(scalar), location: location)
        case .sequence(let sequence):
            var items: [RuleNode] = []
            for item in sequence { items.append(try convert(item, file: file, depth: depth + 1)) }
            return RuleNode(.array(items), location: location)
        case .mapping(let mapping):
            var members: [(key: String, keyLocation: SourceLocation?, value: RuleNode)] = []
            var seen: Set<String> = []
            for (key, value) in mapping {
                let keyLocation = key.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
                guard case .scalar(let keyScalar) = key else {
                    throw TriplineError(.invalidValue, "object keys must be strings", location: keyLocation)
                }
                if !seen.insert(keyScalar.string).inserted {
                    throw TriplineError(.invalidValue, "duplicate key \"\(keyScalar.string)\"", location: keyLocation)
                }
                members.append((keyScalar.string, keyLocation, try convert(value, file: file, depth: depth + 1)))
            }
            return RuleNode(.object(members), location: location)
        case .alias:
            throw TriplineError(.invalidValue, "YAML aliases are not supported in rules", location: location)
        }
    }

    /// YAML 1.2 core schema resolution for plain scalars; quoted and block scalars are strings.
    private static func resolve(_ scalar: Node.Scalar) -> Kind {
        let text = scalar.string
        guard scalar.style == .plain else { return .string(text) }
        if !scalar.tag.description.isEmpty, scalar.tag.description != "?", scalar.tag.description.hasSuffix(":str") {
            return .string(text)
        }
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if let value = Int64(text) { return .int(value) }
        if text.hasPrefix("0x"), let value = Int64(text.dropFirst(2), radix: 16) { return .int(value) }
        if text.hasPrefix("0o"), let value = Int64(text.dropFirst(2), radix: 8) { return .int(value) }
        let isNumeric = text.first.map { $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." } ?? false
        if isNumeric, let value = Double(text), !text.contains("_") { return .double(value) }
        switch text {
        case ".inf", ".Inf", ".INF", "+.inf": return .double(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .double(-.infinity)
        case ".nan", ".NaN", ".NAN": return .double(.nan)
        default: return .string(text)
        }
    }
}
