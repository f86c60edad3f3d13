/// `application/x-www-form-urlencoded` decoding (form bodies, S3 object keys).
public enum FormDecoding {
    /// Decodes `+` as a space and `%XX` escapes; an invalid escape is kept as written.
    public static func unescape(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = ByteEncoding.nibble(bytes[index + 1]), let low = ByteEncoding.nibble(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The name/value pairs of a form body, in order.
    public static func fields(_ body: [UInt8]) -> [(name: String, value: String)] {
        body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = unescape(String(decoding: parts[0], as: UTF8.self))
            let value = parts.count > 1 ? unescape(String(decoding: parts[1], as: UTF8.self)) : ""
            return (name, value)
        }
    }
}
