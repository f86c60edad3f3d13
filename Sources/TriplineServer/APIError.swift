internal import HTTPTypes
public import Hummingbird
internal import NIOCore
internal import TriplineCore

/// An error answered to a client as Prefect does: `{"detail": ...}` with a status code. Nothing else reaches a
/// response body, so internal errors never leak details (or secrets) to clients.
public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    /// The message for the client.
    public var detail: String
    /// Extra headers (e.g. `WWW-Authenticate`).
    public var headers: HTTPFields = [:]

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    /// A 422 for a ``TriplineError`` about client input, naming the field.
    init(invalid error: TriplineError, prefix: String = "") {
        let text = prefix.isEmpty ? error.description : "\(prefix)\(error.path.isEmpty ? ": " : ".")\(error.description)"
        self.init(.unprocessableContent, text)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        let body = JSONValue.object(["detail": .string(detail)]).jsonText
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// A JSON response.
func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: value.jsonText)))
}

extension Request {
    /// The body parsed as JSON, bounded by `limit` bytes.
    /// - Throws: ``APIError`` 413 when larger, 400 when empty or not JSON.
    mutating func jsonBody(limit: Int) async throws -> JSONValue {
        try await jsonBody(limit: limit, whenEmpty: nil)
    }

    /// The body as JSON, or an empty object when there is no body (filters whose every field is optional).
    mutating func optionalJSONBody(limit: Int) async throws -> JSONValue {
        try await jsonBody(limit: limit, whenEmpty: .object([:]))
    }

    private mutating func jsonBody(limit: Int, whenEmpty: JSONValue?) async throws -> JSONValue {
        let buffer = try await bodyBytes(limit: limit)
        if let whenEmpty, buffer.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return whenEmpty }
        return try JSONValue.parseBody(buffer)
    }

    /// The body's bytes, bounded by `limit`.
    /// - Throws: ``APIError`` 413 when larger.
    mutating func bodyBytes(limit: Int) async throws -> ByteBuffer {
        do {
            return try await collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the request body is larger than the limit of \(limit) bytes")
        }
    }
}

extension JSONValue {
    /// A whole number from 0 to `maximum` (`nil` when absent or null); 422 naming `field` for anything else, so that
    /// no client value reaches an integer conversion that could trap.
    func wholeNumber(_ field: String, maximum: Int) throws -> Int? {
        if case .null = self { return nil }
        guard let number, number.isFinite, number.rounded() == number, number >= 0, number <= Double(maximum) else {
            throw APIError(.unprocessableContent, "\(field): must be a whole number from 0 to \(maximum), not \(jsonText.prefix(40))")
        }
        return Int(number)
    }
}

extension JSONValue {
    /// Parses a request body.
    /// - Throws: ``APIError`` 400 when it is empty or not JSON.
    static func parseBody(_ buffer: ByteBuffer) throws -> JSONValue {
        if buffer.readableBytes == 0 { throw APIError(.badRequest, "the request body is empty; expected JSON") }
        let parsed = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(TriplineError) -> JSONValue in try JSONValue.parse(bytes: raw.assumingMemoryBound(to: UInt8.self)) }
        }
        switch parsed {
        case .success(let value): return value
        case .failure(let error): throw APIError(.badRequest, "the request body is not valid JSON: \(error.reason)")
        }
    }

    /// Parses JSON bytes.
    static func parse(_ bytes: [UInt8]) throws(TriplineError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { buffer throws(TriplineError) in try JSONValue.parse(bytes: buffer) }
    }
}
