public import Foundation

extension UUID {
    /// The canonical lowercase text (`8-4-4-4-12` hex digits), the form events carry and the stores keep.
    ///
    /// Written here because Foundation's `uuidString` goes through a C formatter and an uppercase copy: about 0.6 µs per
    /// id, several times per event on the ingest path.
    public var lowercasedText: String {
        withUnsafeBytes(of: uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var out = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        buffer[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    let byte = raw[index]
                    buffer[out] = Self.hexDigit(byte >> 4)
                    buffer[out + 1] = Self.hexDigit(byte & 0x0f)
                    out += 2
                }
                return out
            }
        }
    }

    /// Reads a UUID's text: the canonical `8-4-4-4-12` form in either case directly, anything else as
    /// `UUID(uuidString:)` does.
    public init?(text: String) {
        var text = text
        if let parsed = text.withUTF8(Self.parseCanonical) {
            self.init(uuid: parsed)
        } else if let parsed = UUID(uuidString: text) {
            self = parsed
        } else {
            return nil
        }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? value &+ 48 : value &+ 87
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- 55
        default: nil
        }
    }

    /// The 16 bytes of `8-4-4-4-12` hex text, or `nil` for any other text.
    private static func parseCanonical(_ text: UnsafeBufferPointer<UInt8>) -> uuid_t? {
        guard text.count == 36, text[8] == UInt8(ascii: "-"), text[13] == UInt8(ascii: "-"), text[18] == UInt8(ascii: "-"),
            text[23] == UInt8(ascii: "-")
        else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let complete = withUnsafeMutableBytes(of: &bytes) { output -> Bool in
            var position = 0
            for index in 0..<16 {
                if position == 8 || position == 13 || position == 18 || position == 23 { position += 1 }
                guard let high = hexValue(text[position]), let low = hexValue(text[position + 1]) else { return false }
                output[index] = high << 4 | low
                position += 2
            }
            return true
        }
        return complete ? bytes : nil
    }
}
