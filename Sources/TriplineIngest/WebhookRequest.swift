public import TriplineCore

/// One HTTP request to a webhook endpoint, independent of the HTTP server that received it.
public struct WebhookRequest: Sendable {
    /// `POST`, `GET`, `HEAD`…
    public var method: String
    /// The endpoint's slug, from `/hooks/{slug}`.
    public var slug: String
    /// The request path, e.g. `/hooks/github`.
    public var path: String
    /// The request's headers.
    public var headers: WebhookHeaders
    /// The query string's parameters, in order.
    public var query: [(name: String, value: String)]
    /// The exact body bytes (signatures are computed over these).
    public var body: [UInt8]
    /// When the request arrived.
    public var received: Instant

    /// Creates a request.
    public init(method: String, slug: String, headers: WebhookHeaders, query: [(name: String, value: String)] = [], body: [UInt8], received: Instant) {
        self.method = method
        self.slug = slug
        self.path = "/hooks/\(slug)"
        self.headers = headers
        self.query = query
        self.body = body
        self.received = received
    }

    /// The media type of the body, lowercased and without parameters (`application/json`), or `nil`.
    public var mediaType: String? {
        headers["content-type"].map { MediaType.essence($0) }
    }
}

/// HTTP headers with case-insensitive lookup, keeping their order and repeated names.
public struct WebhookHeaders: Sendable, Sequence {
    public private(set) var entries: [(name: String, value: String)]

    /// Creates headers from name/value pairs.
    public init(_ entries: [(name: String, value: String)] = []) { self.entries = entries }

    /// The first value of `name` (any case), or `nil`.
    public subscript(name: String) -> String? {
        let lowered = name.lowercased()
        return entries.first { $0.name.lowercased() == lowered }?.value
    }

    /// Adds a header.
    public mutating func add(_ name: String, _ value: String) { entries.append((name, value)) }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { entries.makeIterator() }
}

/// Parsing media types from `Content-Type` values.
public enum MediaType {
    /// `type/subtype` lowercased, without parameters.
    public static func essence(_ value: String) -> String {
        let main = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return main.trimmingCharacters(in: " \t").lowercased()
    }

    /// Whether `value` is a syntactically valid RFC 2046 media type (`type/subtype` of token characters, optional
    /// parameters).
    public static func isValid(_ value: String) -> Bool {
        let parts = essence(value).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy(isTokenByte) }
    }

    /// Whether a media type carries JSON (`application/json`, `…+json`, `text/json`).
    public static func isJSON(_ essence: String) -> Bool {
        essence == "application/json" || essence == "text/json" || essence.hasSuffix("+json")
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

extension StringProtocol {
    func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
