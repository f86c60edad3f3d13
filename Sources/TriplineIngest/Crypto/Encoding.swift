internal import Foundation

/// Hex and base64 for signatures.
public enum ByteEncoding: String, Sendable, CaseIterable {
    case hex, base64

    /// `bytes` in this encoding (lowercase hex; standard base64 with padding).
    public func encode(_ bytes: [UInt8]) -> String {
        switch self {
        case .hex: Self.hexString(bytes)
        case .base64: Data(bytes).base64EncodedString()
        }
    }

    /// The bytes `text` encodes, or `nil` when it is not valid in this encoding (hex is case-insensitive).
    public func decode(_ text: some StringProtocol) -> [UInt8]? {
        switch self {
        case .hex: Self.hexBytes(text)
        case .base64: Data(base64Encoded: String(text)).map { [UInt8]($0) }
        }
    }

    static func hexString(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexBytes(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
