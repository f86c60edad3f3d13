internal import HTTPTypes
internal import CoreMetrics
internal import Foundation
public import Hummingbird
internal import Logging

/// Authenticates API requests by bearer token, or by Prefect's `auth_string` sent as HTTP basic auth (the
/// password, or `user:password`, must equal a token). Without configured tokens every caller is `admin` (the
/// server then only listens on loopback).
public struct AuthenticationMiddleware: RouterMiddleware {
    public typealias Context = TriplineRequestContext
    let tokens: [APIToken]
    let metrics: ServerMetrics

    /// Creates the middleware.
    public init(tokens: [APIToken], metrics: ServerMetrics) {
        self.tokens = tokens
        self.metrics = metrics
    }

    /// Paths that never need a token: the probes and Prefect's health check.
    static let openPaths: Set<String> = ["/healthz", "/readyz", "/api/health", "/api/ready"]

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if tokens.isEmpty {
            context.scope = .admin
            return try await next(request, context)
        }
        // Probes are open; webhooks authenticate by their signatures, not by API tokens.
        if Self.openPaths.contains(request.uri.path) || request.uri.path.hasPrefix("/hooks/") { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            metrics.authenticationFailures.increment()
            context.logger.notice("request without credentials refused", metadata: ["path": "\(request.uri.path)"])
            throw APIError(.unauthorized, "authentication required: send `Authorization: Bearer <token>`", headers: [.wwwAuthenticate: "Bearer"])
        }
        guard let token = Self.match(header: header, tokens: tokens) else {
            metrics.authenticationFailures.increment()
            context.logger.notice("request with an unknown credential refused", metadata: ["path": "\(request.uri.path)"])
            throw APIError(.unauthorized, "the credential is not valid", headers: [.wwwAuthenticate: "Bearer"])
        }
        context.scope = token.scope
        context.logger[metadataKey: "token"] = "\(token.name)"
        return try await next(request, context)
    }

    /// The token an `Authorization` header value carries, if any.
    static func match(header: String, tokens: [APIToken]) -> APIToken? {
        if header.lowercased().hasPrefix("bearer ") {
            return find(String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces), in: tokens)
        }
        if header.lowercased().hasPrefix("basic "), let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let decoded = String(data: data, encoding: .utf8)
        {
            return find(decoded, in: tokens)
        }
        return nil
    }

    /// A token equal to `credential`, or to its part after the first `:` (Prefect's `user:password` auth string).
    static func find(_ credential: String, in tokens: [APIToken]) -> APIToken? {
        let candidates = [credential] + (credential.firstIndex(of: ":").map { [String(credential[credential.index(after: $0)...])] } ?? [])
        for candidate in candidates {
            if let token = tokens.first(where: { constantTimeEquals($0.secret, candidate) }) { return token }
        }
        return nil
    }

    /// Compares without an early exit on the first differing byte.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
        for index in 0..<max(left.count, right.count) {
            difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
        }
        return difference == 0
    }
}

extension TriplineRequestContext {
    /// Throws 403 unless the caller's scope includes `scope`.
    func require(_ scope: TokenScope) throws {
        guard let granted = self.scope, granted >= scope else {
            throw APIError(.forbidden, "this token's scope does not allow this request (needs \(scope))")
        }
    }
}
