internal import Foundation
internal import TriplineCore

/// GitHub's webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, and the legacy
/// SHA-1 `X-Hub-Signature` when an endpoint opts in.
public enum GitHubSignature {
    /// Verifies a delivery's signature headers against any of `secrets`.
    /// - Throws: A ``WebhookRejection`` (401) saying which check failed.
    public static func verify(headers: WebhookHeaders, body: [UInt8], secrets: [Secret], allowSHA1: Bool) throws(WebhookRejection) {
        let header: String
        let algorithm: DigestAlgorithm
        if let value = headers["x-hub-signature-256"] {
            (header, algorithm) = (value, .sha256)
        } else if allowSHA1, let value = headers["x-hub-signature"] {
            (header, algorithm) = (value, .sha1)
        } else {
            throw .unauthorized(
                "missing_signature", allowSHA1 ? "the X-Hub-Signature-256 header is missing" : "the X-Hub-Signature-256 header is missing (SHA-1 signatures are not accepted)")
        }
        let prefix = algorithm == .sha256 ? "sha256=" : "sha1="
        guard header.hasPrefix(prefix), let provided = ByteEncoding.hex.decode(header.dropFirst(prefix.count)), provided.count == algorithm.length else {
            throw .unauthorized("bad_signature", "the signature header is not \(prefix)<hex>")
        }
        for secret in secrets where ConstantTime.equals(algorithm.hmac(key: secret.bytes, message: body), provided) { return }
        throw .unauthorized("bad_signature", "the signature does not match the body")
    }
}

extension WebhookProcessor {
    /// GitHub: `github.<X-GitHub-Event>[.<action>]` on the repository (or organization, or installation), with the
    /// sender, installation and organization related, and the body as payload.
    func github(_ request: WebhookRequest) throws(WebhookRejection) -> WebhookResult {
        try GitHubSignature.verify(headers: request.headers, body: request.body, secrets: resolved.secrets, allowSHA1: endpoint.allowSHA1)
        guard let kind = request.headers["x-github-event"], !kind.isEmpty, kind.utf8.count <= 100 else {
            throw .malformed("the X-GitHub-Event header is missing")
        }
        let payload: RawJSONObject
        switch request.mediaType {
        case "application/json"?, nil:
            payload = try Self.rawObject(request.body)
        case "application/x-www-form-urlencoded"?:
            guard let field = FormDecoding.fields(request.body).first(where: { $0.name == "payload" })?.value else {
                throw .malformed("a form-encoded GitHub delivery needs a `payload` field")
            }
            payload = try Self.rawObject(Array(field.utf8), what: "the payload field")
        case let other?:
            throw .unsupportedMediaType("GitHub deliveries are application/json or application/x-www-form-urlencoded, not \(other)")
        }
        var name = "github.\(kind)"
        if case .string(let action)? = payload["action"], !action.isEmpty { name += ".\(action)" }

        // Each path is looked up once: a lookup scans the member's object in the body's text.
        let organization = payload[path: "organization.login"]?.stringValue
        let installation = payload[path: "installation.id"]?.textValue
        var resource: [String: String]
        if let fullName = payload[path: "repository.full_name"]?.stringValue {
            resource = [Resource.idLabel: "github.repository.\(fullName)", "prefect.resource.name": fullName, "github.repository": fullName]
        } else if let login = organization {
            resource = [Resource.idLabel: "github.organization.\(login)", "prefect.resource.name": login, "github.organization": login]
        } else if let installation {
            resource = [Resource.idLabel: "github.installation.\(installation)", "github.installation": installation]
        } else {
            resource = [Resource.idLabel: "github.webhook.\(endpoint.slug)"]
        }
        if case .string(let ref)? = payload["ref"] {
            resource["github.ref"] = ref
            if ref.hasPrefix("refs/heads/") { resource["github.branch"] = String(ref.dropFirst(11)) }
            if ref.hasPrefix("refs/tags/") { resource["github.tag"] = String(ref.dropFirst(10)) }
        }
        var related: [Resource] = []
        if let login = payload[path: "sender.login"]?.stringValue {
            related.append(Resource([Resource.idLabel: "github.user.\(login)", Resource.roleLabel: "sender", "prefect.resource.name": login]))
        }
        if let installation, resource[Resource.idLabel] != "github.installation.\(installation)" {
            related.append(Resource([Resource.idLabel: "github.installation.\(installation)", Resource.roleLabel: "installation"]))
        }
        if let login = organization, resource[Resource.idLabel] != "github.organization.\(login)" {
            related.append(Resource([Resource.idLabel: "github.organization.\(login)", Resource.roleLabel: "organization", "prefect.resource.name": login]))
        }
        related.append(webhookResource)
        let id = Self.eventID(request.headers["x-github-delivery"], prefix: "github", body: request.body)
        let event = Event(
            id: id, occurred: request.received, event: name, resource: Resource(resource), related: related, rawPayload: payload, received: request.received)
        return WebhookResult(events: [event], status: 200, note: name)
    }
}
