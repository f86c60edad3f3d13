/// A compiled shell-style glob with exactly the semantics of Python's `fnmatch.fnmatchcase`: `*` matches any run of
/// characters (dots and slashes included), `?` one character, `[abc]`, `[a-z]` and `[!abc]` one character of (or not
/// of) a set; everything else, including an unterminated `[`, is literal. Matching is case-sensitive and covers the
/// whole value.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    enum Token: Sendable, Hashable {
        case literal(Unicode.Scalar)
        case anyOne
        case set(CharacterSet, negated: Bool)
        case star
    }

    struct CharacterSet: Sendable, Hashable {
        var ranges: [ClosedRange<UInt32>]
        func contains(_ scalar: Unicode.Scalar) -> Bool { ranges.contains { $0.contains(scalar.value) } }
    }

    enum Form: Sendable, Hashable {
        case exact(String)
        case prefix(String)
        case suffix(String)
        case anything
        case never
        case general([Token])
    }

    /// The pattern as written.
    public let pattern: String
    let form: Form

    /// Compiles a pattern. Every string is a valid pattern.
    public init(_ pattern: String) {
        self.pattern = pattern
        let tokens = Self.tokenize(Array(pattern.unicodeScalars))
        self.form = Self.simplify(tokens)
    }

    /// Whether the pattern has any wildcard at all (`*`, `?` or a set).
    public var isLiteral: Bool {
        if case .exact = form { return true }
        return false
    }

    /// The literal text every match starts with (empty when the pattern starts with a wildcard).
    public var literalPrefix: String {
        switch form {
        case .exact(let text), .prefix(let text): return text
        case .suffix, .anything, .never: return ""
        case .general(let tokens):
            var scalars = String.UnicodeScalarView()
            for token in tokens {
                guard case .literal(let scalar) = token else { break }
                scalars.append(scalar)
            }
            return String(scalars)
        }
    }

    /// Whether `value` matches the whole pattern.
    public func matches(_ value: String) -> Bool {
        switch form {
        case .exact(let text): return value == text
        case .prefix(let text): return value.utf8.starts(with: text.utf8)
        case .suffix(let text):
            let utf8 = value.utf8
            let suffix = text.utf8
            return utf8.count >= suffix.count && utf8.suffix(suffix.count).elementsEqual(suffix)
        case .anything: return true
        case .never: return false
        case .general(let tokens): return Self.match(tokens, Array(value.unicodeScalars))
        }
    }

    public var description: String { pattern }

    // MARK: - Compilation

    private static func simplify(_ tokens: [Token]) -> Form {
        var literal = String.UnicodeScalarView()
        var allLiteral = true
        for token in tokens {
            if case .literal(let scalar) = token { literal.append(scalar) } else { allLiteral = false }
        }
        if allLiteral { return .exact(String(literal)) }
        if tokens == [.star] { return .anything }
        if tokens.contains(where: { if case .set(let set, negated: false) = $0 { return set.ranges.isEmpty } else { return false } }) {
            return .never
        }
        let stars = tokens.filter { $0 == .star }.count
        let others = tokens.filter { if case .literal = $0 { return false } else { return $0 != .star } }.count
        if stars == 1, others == 0 {
            if tokens.last == .star { return .prefix(String(String.UnicodeScalarView(tokens.dropLast().map(Self.scalar)))) }
            if tokens.first == .star { return .suffix(String(String.UnicodeScalarView(tokens.dropFirst().map(Self.scalar)))) }
        }
        return .general(tokens)
    }

    private static func scalar(_ token: Token) -> Unicode.Scalar {
        if case .literal(let scalar) = token { return scalar }
        preconditionFailure("only literal tokens reach here")
    }

    /// Mirrors `fnmatch.translate`: the same tokens, the same treatment of sets, ranges and unterminated brackets.
    private static func tokenize(_ pat: [Unicode.Scalar]) -> [Token] {
        var tokens: [Token] = []
        var i = 0
        let n = pat.count
        while i < n {
            let c = pat[i]
            i += 1
            switch c {
            case "*":
                if tokens.last != .star { tokens.append(.star) }
            case "?":
                tokens.append(.anyOne)
            case "[":
                var j = i
                if j < n, pat[j] == "!" { j += 1 }
                if j < n, pat[j] == "]" { j += 1 }
                while j < n, pat[j] != "]" { j += 1 }
                if j >= n {
                    tokens.append(.literal("["))
                } else {
                    tokens.append(setToken(pat, from: i, to: j))
                    i = j + 1
                }
            default:
                tokens.append(.literal(c))
            }
        }
        return tokens
    }

    /// The set between `pat[start]` (just after `[`) and `pat[end]` (the closing `]`), as `fnmatch.translate` builds it.
    private static func setToken(_ pat: [Unicode.Scalar], from start: Int, to end: Int) -> Token {
        let content = Array(pat[start..<end])
        let negated = content.first == "!"
        // Split at hyphens the way fnmatch does: a hyphen first in the set is literal, and after a range the next
        // hyphen search skips two characters.
        var chunks: [[Unicode.Scalar]] = []
        var i = 0
        var k = negated ? 2 : 1
        while true {
            guard let found = (k < content.count ? content[k...].firstIndex(of: "-") : nil) else { break }
            chunks.append(Array(content[i..<found]))
            i = found + 1
            k = found + 3
        }
        let tail = Array(content[min(i, content.count)...])
        if !tail.isEmpty {
            chunks.append(tail)
        } else if !chunks.isEmpty {
            chunks[chunks.count - 1].append("-")
        } else {
            chunks.append([])
        }
        // Remove empty ranges (lo > hi), merging the neighbours as fnmatch does.
        var index = chunks.count - 1
        while index > 0 {
            if let lo = chunks[index - 1].last, let hi = chunks[index].first, lo.value > hi.value {
                chunks[index - 1] = Array(chunks[index - 1].dropLast()) + Array(chunks[index].dropFirst())
                chunks.remove(at: index)
            }
            index -= 1
        }
        // Build the class: characters of each chunk are literal; between two chunks the last character of one and
        // the first of the next form a range. An empty neighbour makes the hyphen literal.
        var items: [ClosedRange<UInt32>] = []
        var pendingHyphenRange = false
        for (chunkIndex, chunk) in chunks.enumerated() {
            var chars = chunk
            if chunkIndex == 0, negated, !chars.isEmpty { chars.removeFirst() }
            if pendingHyphenRange {
                if let lo = items.popLast(), let hi = chars.first, lo.lowerBound == lo.upperBound {
                    items.append(lo.lowerBound...hi.value)
                    chars.removeFirst()
                } else {
                    if let lo = items.popLast() { items.append(lo) }
                    items.append(45...45)  // "-"
                }
            }
            for scalar in chars { items.append(scalar.value...scalar.value) }
            pendingHyphenRange = chunkIndex < chunks.count - 1
        }
        if pendingHyphenRange { items.append(45...45) }
        if negated, items.isEmpty {
            // `[!]` is "any character" in fnmatch.
            return .anyOne
        }
        return .set(CharacterSet(ranges: items), negated: negated)
    }

    // MARK: - Matching

    private static func matchOne(_ token: Token, _ scalar: Unicode.Scalar) -> Bool {
        switch token {
        case .literal(let expected): scalar == expected
        case .anyOne: true
        case .set(let set, let negated): set.contains(scalar) != negated
        case .star: true
        }
    }

    /// Wildcard matching with a single backtrack point: correct because every token but `*` matches exactly one
    /// character. Linear in practice, O(n·m) worst case, never exponential.
    private static func match(_ tokens: [Token], _ value: [Unicode.Scalar]) -> Bool {
        var t = 0
        var v = 0
        var starToken = -1
        var starValue = 0
        while v < value.count {
            if t < tokens.count, tokens[t] == .star {
                starToken = t
                starValue = v
                t += 1
            } else if t < tokens.count, matchOne(tokens[t], value[v]) {
                t += 1
                v += 1
            } else if starToken >= 0 {
                t = starToken + 1
                starValue += 1
                v = starValue
            } else {
                return false
            }
        }
        while t < tokens.count, tokens[t] == .star { t += 1 }
        return t == tokens.count
    }
}

/// One pattern of a label or event-name specification: a glob, negated by a leading `!`.
///
/// A missing value never matches, not even a negated pattern (Prefect's `matches`).
public struct LabelPattern: Sendable, Hashable, CustomStringConvertible {
    /// Whether the pattern was written with a leading `!`.
    public let negated: Bool
    /// The glob without the `!`.
    public let glob: Glob

    /// Compiles `text`, reading a leading `!` as negation.
    public init(_ text: String) {
        if text.hasPrefix("!") {
            negated = true
            glob = Glob(String(text.dropFirst()))
        } else {
            negated = false
            glob = Glob(text)
        }
    }

    /// Whether `value` satisfies the pattern; `nil` (a missing label) never does.
    @inline(__always)
    public func matches(_ value: String?) -> Bool {
        guard let value else { return false }
        return glob.matches(value) != negated
    }

    /// The pattern as written.
    public var description: String { negated ? "!" + glob.pattern : glob.pattern }
}
