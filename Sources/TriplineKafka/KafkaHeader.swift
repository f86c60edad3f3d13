/// A Kafka record header: a name and an optional value (Kafka allows a header without a value).
public struct KafkaHeader: Sendable, Hashable {
    /// The header's name.
    public var key: String
    /// The header's bytes; `nil` for a header without a value.
    public var value: [UInt8]?

    /// Creates a header.
    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    /// Creates a header whose value is UTF-8 text.
    public init(key: String, text: String) {
        self.key = key
        self.value = Array(text.utf8)
    }
}
