/// The error type of TriplineCore: a code that says what kind of problem it is, a reason a user can act on,
/// and where the problem is in the user's input (a field path, and a file position when known).
public struct TriplineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is. Extensible: later modules add codes without breaking `switch`es.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidJSON, invalidYAML, invalidEvent, invalidAutomation, unknownField, unknownType
            case missingField, invalidValue, limitExceeded, io, usage
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input is not well-formed JSON.
        public static let invalidJSON = Code(.invalidJSON)
        /// The input is not well-formed YAML.
        public static let invalidYAML = Code(.invalidYAML)
        /// An event does not satisfy the event schema.
        public static let invalidEvent = Code(.invalidEvent)
        /// An automation is well-formed but inconsistent (for example a run-deployment loop).
        public static let invalidAutomation = Code(.invalidAutomation)
        /// An object has a field the schema does not define.
        public static let unknownField = Code(.unknownField)
        /// A `type` discriminator names no known trigger or action type.
        public static let unknownType = Code(.unknownType)
        /// A required field is absent.
        public static let missingField = Code(.missingField)
        /// A field has a value of the wrong kind or out of range.
        public static let invalidValue = Code(.invalidValue)
        /// A size or count limit is exceeded.
        public static let limitExceeded = Code(.limitExceeded)
        /// Reading or writing a file failed.
        public static let io = Code(.io)
        /// A command was used wrongly.
        public static let usage = Code(.usage)

        public var description: String { base.rawValue }
    }

    /// What kind of problem this is.
    public var code: Code
    /// What is wrong, in words a user can act on.
    public var reason: String
    /// The path of the offending field in the document (`trigger.triggers[1].within`), empty when not applicable.
    public var path: String
    /// Where the offending value is in its source text, when known.
    public var location: SourceLocation?
    /// How to fix it, when there is advice to give.
    public var hint: String?

    /// Creates an error.
    public init(_ code: Code, _ reason: String, path: String = "", location: SourceLocation? = nil, hint: String? = nil) {
        self.code = code
        self.reason = reason
        self.path = path
        self.location = location
        self.hint = hint
    }

    /// `path: reason (hint)`, without the location.
    public var message: String {
        var text = path.isEmpty ? reason : "\(path): \(reason)"
        if let hint { text += " (hint: \(hint))" }
        return text
    }

    public var description: String {
        if let location { return "\(location): \(message)" }
        return message
    }
}

/// A position in a source file: 1-based line and column.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The file the text came from, when it came from a file.
    public var file: String?
    /// 1-based line.
    public var line: Int
    /// 1-based column.
    public var column: Int

    /// Creates a location.
    public init(file: String? = nil, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        if let file { return "\(file):\(line):\(column)" }
        return "\(line):\(column)"
    }
}
