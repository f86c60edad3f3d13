/// Which event names an event trigger sees, exactly as Prefect decides it, plus Tripline's negation (D1).
///
/// Prefect applies two tests that must both pass:
/// 1. the trigger index: `fnmatchcase(name, key)` for some key, where the keys are `expect ∪ after`, or `*` when
///    `expect` is empty;
/// 2. `covers`: a regular expression built from `expect ∪ after` with every character literal except `*`, which
///    becomes `.+` (at least one character), matched at the start of the name only; `.+` when `expect` is empty.
///
/// So `?` and `[...]` never act as wildcards in event names, a `*` needs at least one character, and a trailing
/// `*` is needed to match longer names. Tripline's one difference: a pattern written with a leading `!` matches
/// every name its glob does not match (Prefect: such a pattern never matches).
public struct EventNameFilter: Sendable, Hashable {
    /// One `expect`/`after` pattern, precompiled for both tests.
    struct Pattern: Sendable, Hashable {
        let text: String
        let negated: LabelPattern?
        let indexGlob: Glob
        /// The literal pieces between `*`s of the start-anchored regular expression, as UTF-8.
        let segments: [[UInt8]]

        init(_ text: String) {
            self.text = text
            self.negated = text.hasPrefix("!") ? LabelPattern(text) : nil
            self.indexGlob = Glob(text)
            self.segments = text.split(separator: "*", omittingEmptySubsequences: false).map { Array($0.utf8) }
        }

        /// Prefect's `re.match(escape(p).replace("\\*", ".+"), name)`.
        func regexPrefixMatches(_ name: String) -> Bool {
            var name = name
            return name.withUTF8 { bytes in
                let first = segments[0]
                guard bytes.count >= first.count else { return false }
                for index in 0..<first.count where bytes[index] != first[index] { return false }
                var position = first.count
                for needle in segments.dropFirst() {
                    position += 1  // `.+` takes at least one character
                    guard position <= bytes.count else { return false }
                    if needle.isEmpty { continue }
                    guard let found = Self.find(needle, in: bytes, from: position) else { return false }
                    position = found + needle.count
                }
                return position <= bytes.count
            }
        }

        private static func find(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
            var index = start
            outer: while index + needle.count <= haystack.count {
                for offset in 0..<needle.count where haystack[index + offset] != needle[offset] {
                    index += 1
                    continue outer
                }
                return index
            }
            return nil
        }
    }

    let expectEmpty: Bool
    let patterns: [Pattern]

    /// Builds the filter of a trigger from its `expect` and `after` patterns.
    public init(expect: [String], after: [String]) {
        self.expectEmpty = expect.isEmpty
        self.patterns = Array(Set(expect).union(after)).sorted().map(Pattern.init)
    }

    /// The index keys of the trigger: `*` when `expect` is empty, else `expect ∪ after`.
    public var indexKeys: [String] { expectEmpty ? ["*"] : patterns.map(\.text) }

    /// Whether the trigger sees events named `name`.
    public func admits(_ name: String) -> Bool {
        if expectEmpty { return !name.isEmpty }
        var indexed = false
        var covered = false
        for pattern in patterns {
            if let negated = pattern.negated {
                if negated.matches(name) { return true }
                continue
            }
            if !indexed, pattern.indexGlob.matches(name) { indexed = true }
            if !covered, pattern.regexPrefixMatches(name) { covered = true }
            if indexed, covered { return true }
        }
        return false
    }

    /// Why `name` is not admitted, in words; `nil` when it is.
    public func rejection(of name: String) -> String? {
        if admits(name) { return nil }
        let list = patterns.map { "\"\($0.text)\"" }.joined(separator: ", ")
        var reason = "event name \"\(name)\" matches none of expect/after [\(list)]"
        if patterns.contains(where: { $0.negated == nil && $0.indexGlob.matches(name) }) {
            reason += "; note that in event names only * is a wildcard, and it needs at least one character"
        } else if patterns.contains(where: { $0.negated == nil && $0.regexPrefixMatches(name) }) {
            reason += "; a pattern matches the start of the name only: add a trailing * to match longer names"
        }
        return reason
    }
}
