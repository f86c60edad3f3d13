public import Foundation
internal import TriplineCore

extension UUID {
    /// Tripline's namespace for name-based event ids.
    public static let triplineNamespace = UUID(text: "6f0c7a3e-2b1d-5c4e-9a8f-3d2e1b0c4a5f")!

    /// A name-based UUID (RFC 9562 version 5: SHA-1 of the namespace and the name), so that the same delivery
    /// always gets the same event id.
    public init(name: String, namespace: UUID = .triplineNamespace) {
        var bytes: [UInt8] = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        bytes += Array(name.utf8)
        var hash = DigestAlgorithm.sha1.hash(bytes)
        hash[6] = (hash[6] & 0x0f) | 0x50
        hash[8] = (hash[8] & 0x3f) | 0x80
        self = UUID(
            uuid: (
                hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], hash[8], hash[9], hash[10], hash[11], hash[12],
                hash[13], hash[14], hash[15]
            ))
    }

    /// `text` as a UUID when it is one, otherwise the name-based UUID of `prefix` and `text`.
    public static func eventID(from text: String, prefix: String) -> UUID {
        UUID(text: text) ?? UUID(name: "\(prefix):\(text)")
    }
}
