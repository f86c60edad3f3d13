/// A JSON parser from UTF-8 bytes straight to ``JSONValue`` (RFC 8259): no intermediate Foundation objects, errors
/// with line and column, a nesting limit, invalid UTF-8 rejected.
struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    static let maximumDepth = 512

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses one JSON document (surrounding whitespace allowed).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(TriplineError) -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    private func error(_ reason: String) -> TriplineError {
        var line = 1
        var column = 1
        for position in 0..<min(index, bytes.count) {
            if bytes[position] == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return TriplineError(.invalidJSON, "not valid JSON: \(reason) at line \(line), column \(column)")
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(TriplineError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) throws(TriplineError) -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw error("unexpected character") }
        index += count
        return value
    }

    private mutating func enter() throws(TriplineError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nesting deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func parseObject() throws(TriplineError) -> JSONValue {
        try enter()
        var object: [String: JSONValue] = [:]
        try forEachMember { parser, key throws(TriplineError) in
            let name = try parser.decodeString(key.start, key.end, simple: key.simple, ascii: key.ascii)
            object[name] = try parser.parseValue()
        }
        depth -= 1
        return .object(object)
    }

    private mutating func parseArray() throws(TriplineError) -> JSONValue {
        try enter()
        var array: [JSONValue] = []
        try forEachElement { parser throws(TriplineError) in array.append(try parser.parseValue()) }
        depth -= 1
        return .array(array)
    }

    /// Moves past a string literal (the index at its opening quote) and tells where its contents are and whether they
    /// need decoding (escapes) or UTF-8 validation (bytes outside ASCII).
    private mutating func scanString() throws(TriplineError) -> (start: Int, end: Int, simple: Bool, ascii: Bool) {
        index += 1
        let start = index
        var simple = true
        var ascii = true
        let base = UnsafeRawPointer(bytes.baseAddress)
        while index < bytes.count {
            // Eight bytes at a time past runs of plain characters (most of a string); any byte that needs a look
            // (a quote, a backslash, a control character, or a first non-ASCII one) is then handled on its own.
            if let base {
                while index &+ 8 <= bytes.count, !Self.needsALook(base.loadUnaligned(fromByteOffset: index, as: UInt64.self), ascii: ascii) {
                    index &+= 8
                }
                guard index < bytes.count else { break }
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                simple = false
                index += 2
                continue
            }
            if byte < 0x20 { throw error("a control character inside a string") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        guard index < bytes.count else { throw error("unterminated string") }
        let end = index
        index += 1
        return (start, end, simple, ascii)
    }

    /// Whether any of the eight bytes in `word` is a quote, a backslash or a control character, or (while the string
    /// has been ASCII so far) a non-ASCII byte. Exact for "any" (the classic has-zero-byte and has-less-than tests).
    @inline(__always)
    static func needsALook(_ word: UInt64, ascii: Bool) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
        let backslashes = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
        let zeroInQuotes = (quotes &- ones) & ~quotes
        let zeroInBackslashes = (backslashes &- ones) & ~backslashes
        let control = (word &- ones &* 0x20) & ~word
        let special = (zeroInQuotes | zeroInBackslashes | control) & highs
        return special != 0 || (ascii && word & highs != 0)
    }

    private mutating func parseString() throws(TriplineError) -> String {
        let (start, end, simple, ascii) = try scanString()
        return try decodeString(start, end, simple: simple, ascii: ascii)
    }

    private func decodeString(_ start: Int, _ end: Int, simple: Bool, ascii: Bool) throws(TriplineError) -> String {
        if simple {
            let slice = UnsafeBufferPointer(rebasing: bytes[start..<end])
            if ascii { return String(decoding: slice, as: UTF8.self) }
            guard let text = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
            return text
        }
        var output: [UInt8] = []
        output.reserveCapacity(end - start)
        var position = start
        while position < end {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                position += 1
                continue
            }
            position += 1
            guard position < end else { throw error("a bad escape") }
            switch bytes[position] {
            case UInt8(ascii: "\""): output.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): output.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4(position + 1, end)
                position += 4
                if (0xD800..<0xDC00).contains(code), position + 6 < end + 1, bytes[position + 1] == UInt8(ascii: "\\"),
                    position + 2 < end, bytes[position + 2] == UInt8(ascii: "u")
                {
                    let low = try hex4(position + 3, end)
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        position += 6
                    }
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                output.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw error("a bad escape")
            }
            position += 1
        }
        guard let text = String(validating: output, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
        return text
    }

    private func hex4(_ from: Int, _ end: Int) throws(TriplineError) -> UInt32 {
        guard from + 4 <= end else { throw error("a bad \\u escape") }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[from + offset]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("a bad \\u escape")
            }
            value = value * 16 + digit
        }
        return value
    }

    private mutating func parseNumber() throws(TriplineError) -> JSONValue {
        let start = index
        let isInteger = try scanNumber()
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let value = Int64(text) { return .int(value) }
        guard let value = Double(text) else { throw error("a bad number") }
        return .double(value)
    }

    /// Moves past a number; tells whether it is written as an integer.
    private mutating func scanNumber() throws(TriplineError) -> Bool {
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { throw error("a bad number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            let digits = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > digits else { throw error("a bad number") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digits = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > digits else { throw error("a bad number") }
        }
        return isInteger
    }
}

// MARK: - Checking and looking up without building values

extension JSONParser {
    /// Checks that `bytes` hold one valid JSON document, with the same rules and messages as ``parse(_:)``, without
    /// building it; when the document is an object, lists its members on the way.
    /// - Returns: Where the value starts and ends (surrounding whitespace excluded) and, for an object, each key with
    ///   where its value's text is (a key that appears twice is listed twice, in order).
    static func validate(_ bytes: UnsafeBufferPointer<UInt8>) throws(TriplineError)
        -> (range: Range<Int>, members: [(key: String, value: Range<Int>)]?)
    {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let start = parser.index
        var members: [(key: String, value: Range<Int>)]?
        if start < bytes.count, bytes[start] == UInt8(ascii: "{") {
            var list: [(key: String, value: Range<Int>)] = []
            try parser.enter()
            try parser.forEachMember { parser, key throws(TriplineError) in
                let name = try parser.decodeString(key.start, key.end, simple: key.simple, ascii: key.ascii)
                let valueStart = parser.index
                try parser.skipValue()
                list.append((name, valueStart..<parser.index))
            }
            parser.depth -= 1
            members = list
        } else {
            try parser.skipValue()
        }
        let end = parser.index
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return (start..<end, members)
    }

    /// Where the value of `key` is in the valid JSON object at `start` (its last occurrence, as parsing keeps the last
    /// one); `nil` when the value there is not an object or lacks the key.
    static func member(_ key: String, of bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Range<Int>? {
        var parser = JSONParser(bytes)
        parser.index = start
        var found: Range<Int>?
        var key = key
        key.withUTF8 { wanted in
            try? parser.forEachMember { parser, candidate throws(TriplineError) in
                let matches: Bool
                if candidate.simple {
                    matches = UnsafeBufferPointer(rebasing: parser.bytes[candidate.start..<candidate.end]).elementsEqual(wanted)
                } else {
                    let decoded = try parser.decodeString(candidate.start, candidate.end, simple: false, ascii: candidate.ascii)
                    matches = decoded.utf8.elementsEqual(wanted)
                }
                let valueStart = parser.index
                try parser.skipValue()
                if matches { found = valueStart..<parser.index }
            }
        }
        return found
    }

    /// The value whose text is at `range` of valid JSON.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>) -> JSONValue? {
        var parser = JSONParser(bytes)
        parser.index = range.lowerBound
        return try? parser.parseValue()
    }

    /// Calls `body` for each member of the object at the index, with the parser just past the key's colon; `body`
    /// must move past the value. Does nothing when the value at the index is not an object.
    private mutating func forEachMember(
        _ body: (inout JSONParser, _ key: (start: Int, end: Int, simple: Bool, ascii: Bool)) throws(TriplineError) -> Void
    ) throws(TriplineError) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try scanString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            try body(&self, key)
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in an object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
            index += 1
            return
        }
    }

    /// Calls `body` for each element of the array at the index, with the parser at the element; `body` must move past
    /// it.
    private mutating func forEachElement(_ body: (inout JSONParser) throws(TriplineError) -> Void) throws(TriplineError) {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try body(&self)
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in an array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
            index += 1
            return
        }
    }

    private mutating func skipValue() throws(TriplineError) {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            try enter()
            try forEachMember { parser, key throws(TriplineError) in
                if !key.simple || !key.ascii { _ = try parser.decodeString(key.start, key.end, simple: key.simple, ascii: key.ascii) }
                try parser.skipValue()
            }
            depth -= 1
        case UInt8(ascii: "["):
            try enter()
            try forEachElement { parser throws(TriplineError) in try parser.skipValue() }
            depth -= 1
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): _ = try literal("true", .null)
        case UInt8(ascii: "f"): _ = try literal("false", .null)
        case UInt8(ascii: "n"): _ = try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw error("unexpected character")
        }
    }

    /// Moves past a string, checking its escapes and UTF-8 as parsing does (by decoding it when it has either).
    private mutating func skipString() throws(TriplineError) {
        let string = try scanString()
        if !string.simple || !string.ascii {
            _ = try decodeString(string.start, string.end, simple: string.simple, ascii: string.ascii)
        }
    }
}
