internal import Foundation

#if canImport(Glibc)
internal import Glibc
#endif

/// Refuses private, loopback, link-local and unspecified addresses for webhooks unless their destination allows
/// them, so that rules cannot be used to reach services inside the network (or the server's own API).
enum NetworkPolicy {
    /// Whether `url`'s host is, or resolves to, an address that is not public.
    static func isPrivate(url: String) async -> Bool {
        guard let host = URLComponents(string: url)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), !host.isEmpty else {
            return true
        }
        let lowered = host.lowercased()
        if lowered == "localhost" || lowered.hasSuffix(".localhost") { return true }
        if let literal = isPrivateLiteral(lowered) { return literal }
        // getaddrinfo blocks: run it on a dispatch queue, not on the cooperative pool.
        let addresses = await withCheckedContinuation { (continuation: CheckedContinuation<[String], Never>) in
            DispatchQueue.global().async { continuation.resume(returning: resolve(host)) }
        }
        if addresses.isEmpty { return false }  // unresolvable: the request itself fails as a network error
        return addresses.contains { isPrivateLiteral($0) ?? true }
    }

    /// For an IP literal, whether it is not public; `nil` when `host` is not an IP literal.
    static func isPrivateLiteral(_ host: String) -> Bool? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            let value = UInt32(bigEndian: v4.s_addr)
            let a = value >> 24
            let b = (value >> 16) & 0xff
            return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (16...31).contains(b)) || (a == 192 && b == 168)
                || (a == 100 && (64...127).contains(b)) || a >= 224
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            if bytes.allSatisfy({ $0 == 0 }) { return true }  // ::
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }  // ::1
            if bytes[0] & 0xfe == 0xfc { return true }  // fc00::/7
            if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { return true }  // fe80::/10
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {  // ::ffff:a.b.c.d
                return isPrivateLiteral("\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])")
            }
            return bytes[0] == 0xff  // multicast
        }
        return nil
    }

    static func resolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var pointer: UnsafeMutablePointer<addrinfo>? = first
        while let info = pointer {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                addresses.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            pointer = info.pointee.ai_next
        }
        return addresses
    }
}
