import Synchronization

/// A JSON object kept as the text it arrived in: checked once, looked into without building it, written out by copying
/// its bytes, and parsed into ``JSONValue``s only when something reads the whole of it.
///
/// Webhook bodies become event payloads this way: a 7 KB GitHub delivery is verified, mapped (a few members read),
/// and stored without a tree of values being built and written back out.
public struct RawJSONObject: Sendable {
    final class Storage: Sendable {
        let bytes: [UInt8]
        /// Where the object's text is in `bytes` (surrounding whitespace excluded).
        let range: Range<Int>
        /// The top-level members in order, duplicates included.
        let members: [(key: String, value: Range<Int>)]
        let parsed = Mutex<[String: JSONValue]?>(nil)

        init(bytes: [UInt8], range: Range<Int>, members: [(key: String, value: Range<Int>)]) {
            self.bytes = bytes
            self.range = range
            self.members = members
        }
    }

    let storage: Storage

    /// Checks that `bytes` are one JSON object (with the rules and limits of ``JSONValue/parse(bytes:)``).
    /// - Throws: A ``TriplineError`` with code `.invalidJSON` and the line and column for text that is not JSON, or
    ///   with code `.invalidValue` ("must be a JSON object, not an array") for JSON that is not an object.
    public init(validating bytes: [UInt8]) throws(TriplineError) {
        let (range, members) = try bytes.withUnsafeBufferPointer { buffer throws(TriplineError) in try JSONParser.validate(buffer) }
        guard let members else {
            let kind = bytes.withUnsafeBufferPointer { buffer in JSONParser.parse(buffer, range: range)?.kindDescription ?? "something else" }
            throw TriplineError(.invalidValue, "must be a JSON object, not \(kind)")
        }
        storage = Storage(bytes: bytes, range: range, members: members)
    }

    /// The object's text, exactly as received (without surrounding whitespace).
    public var bytes: ArraySlice<UInt8> { storage.bytes[storage.range] }

    /// The object's members as values; parsed on first use and kept.
    public var value: [String: JSONValue] {
        storage.parsed.withLock { parsed in
            if let parsed { return parsed }
            var object: [String: JSONValue] = [:]
            object.reserveCapacity(storage.members.count)
            storage.bytes.withUnsafeBufferPointer { buffer in
                for member in storage.members { object[member.key] = JSONParser.parse(buffer, range: member.value) ?? .null }
            }
            parsed = object
            return object
        }
    }

    /// The value of a top-level member (the last one when the key appears twice, as parsing keeps), without parsing
    /// anything else.
    public subscript(key: String) -> JSONValue? {
        guard let member = storage.members.last(where: { $0.key == key }) else { return nil }
        return storage.bytes.withUnsafeBufferPointer { buffer in JSONParser.parse(buffer, range: member.value) }
    }

    /// The value at a dotted path of object members (`repository.full_name`), parsing only that value.
    public subscript(path path: String) -> JSONValue? {
        var components = path.split(separator: ".")[...]
        guard let first = components.popFirst(), let member = storage.members.last(where: { $0.key == first }) else { return nil }
        return storage.bytes.withUnsafeBufferPointer { buffer -> JSONValue? in
            var range = member.value
            for component in components {
                guard let next = JSONParser.member(String(component), of: buffer, at: range.lowerBound) else { return nil }
                range = next
            }
            return JSONParser.parse(buffer, range: range)
        }
    }
}

extension RawJSONObject: Hashable {
    public static func == (lhs: RawJSONObject, rhs: RawJSONObject) -> Bool {
        lhs.storage === rhs.storage || lhs.bytes == rhs.bytes || lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}
