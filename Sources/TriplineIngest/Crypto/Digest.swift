internal import COpenSSL

/// The hash functions webhook signatures use.
public enum DigestAlgorithm: String, Sendable, CaseIterable {
    case sha1, sha256, sha512

    var evp: OpaquePointer? {
        switch self {
        case .sha1: EVP_sha1()
        case .sha256: EVP_sha256()
        case .sha512: EVP_sha512()
        }
    }

    /// The digest's length in bytes.
    public var length: Int {
        switch self {
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }

    /// The digest of `data`.
    public func hash(_ data: some Collection<UInt8>) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withContiguousStorageIfAvailable { buffer in
            EVP_Digest(buffer.baseAddress, buffer.count, &output, &length, evp, nil)
        } ?? Array(data).withUnsafeBufferPointer { buffer in
            EVP_Digest(buffer.baseAddress, buffer.count, &output, &length, evp, nil)
        }
        precondition(ok == 1, "EVP_Digest cannot fail for a built-in digest")
        return Array(output.prefix(Int(length)))
    }

    /// HMAC of `message` under `key`.
    public func hmac(key: some Collection<UInt8>, message: some Collection<UInt8>) -> [UInt8] {
        // A zero-length key still needs a valid pointer: give it a one-byte buffer and a length of 0.
        let keyLength = key.count
        let key = keyLength == 0 ? [UInt8(0)] : Array(key)
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let compute = { (messageBuffer: UnsafeBufferPointer<UInt8>) -> Void in
            key.withUnsafeBufferPointer { keyBuffer in
                let result = HMAC(evp, keyBuffer.baseAddress, Int32(keyLength), messageBuffer.baseAddress, messageBuffer.count, &output, &length)
                precondition(result != nil, "HMAC cannot fail for a built-in digest")
            }
        }
        if message.withContiguousStorageIfAvailable(compute) == nil { Array(message).withUnsafeBufferPointer(compute) }
        return Array(output.prefix(Int(length)))
    }
}

/// Byte comparisons whose time does not depend on where the inputs differ.
public enum ConstantTime {
    /// Whether `a` and `b` are equal, taking the same time for every pair of equal-length inputs.
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { left in b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, a.count) == 0 } }
    }
}
