internal import Foundation
public import TriplineCore

extension WebhookEndpoint {
    static let knownFields = [
        "slug", "name", "description", "enabled", "preset", "secret", "secrets", "tolerance", "allow_sha1", "signature", "auth",
        "unauthenticated", "topics", "confirm_subscriptions", "event", "id_header", "keep_failed_bodies", "max_body_size",
        "template", "sample",
    ]
    static let signatureFields = ["header", "algorithm", "encoding", "prefix", "timestamp_header", "signed_payload"]

    /// Reads webhook endpoints from a rules document: one endpoint, a list of them, or several YAML documents.
    /// - Returns: The endpoints and every problem found, located by file:line:column. Endpoints with problems are
    ///   left out.
    public static func load(text: String, file: String? = nil) -> (endpoints: [WebhookEndpoint], errors: [TriplineError]) {
        let loaded = RuleNode.decodeDeclarations(text, file: file) { node, path, diagnostics in decode(node, path: path, diagnostics: diagnostics) }
        return (loaded.values, loaded.errors)
    }

    /// Decodes one endpoint, reporting every problem to `diagnostics`.
    public static func decode(_ node: RuleNode, path: String = "", diagnostics: Diagnostics) -> WebhookEndpoint? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let slug = reader.string("slug", required: true)
        if let slug, !isValidSlug(slug) {
            diagnostics.report(
                .invalidValue, "must be 1 to 64 letters, digits, '-', '_' or '.'", path: reader.childPath("slug"), at: reader.optional("slug"),
                hint: "the endpoint is served at /hooks/<slug>")
        }
        var presetValue: Preset?
        if let presetNode = reader.required("preset", hint: "one of \(Preset.allCases.map(\.rawValue).joined(separator: ", "))"),
            let text = ObjectReader.string(presetNode, path: reader.childPath("preset"), diagnostics: diagnostics)
        {
            presetValue = Preset(rawValue: text)
            if presetValue == nil {
                diagnostics.report(
                    .unknownType, "unknown preset \"\(text)\"", path: reader.childPath("preset"), at: presetNode,
                    hint: "one of \(Preset.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        // Read on even without a slug or preset, so that every problem is reported at once.
        let complete = slug != nil && presetValue != nil
        var endpoint = WebhookEndpoint(slug: slug ?? "", preset: presetValue ?? .generic)
        endpoint.source = node.location
        endpoint.name = reader.string("name") ?? endpoint.slug
        endpoint.description = reader.string("description") ?? ""
        endpoint.enabled = reader.bool("enabled") ?? true

        var references: [(String, RuleNode)] = []
        if let single = reader.optional("secret"), let text = ObjectReader.string(single, path: reader.childPath("secret"), diagnostics: diagnostics) {
            references.append((text, single))
        }
        if let list = reader.optional("secrets") {
            if case .array(let items) = list.kind {
                for (index, item) in items.enumerated() {
                    if let text = ObjectReader.string(item, path: reader.childPath("secrets[\(index)]"), diagnostics: diagnostics) {
                        references.append((text, item))
                    }
                }
            } else {
                diagnostics.report(.invalidValue, "must be a list of `env:NAME` / `file:PATH` references", path: reader.childPath("secrets"), at: list)
            }
        }
        for (text, referenceNode) in references {
            do {
                endpoint.secrets.append(try SecretReference(parsing: text))
            } catch {
                diagnostics.report(error.code, error.reason, path: reader.childPath("secrets"), at: referenceNode, hint: error.hint)
            }
        }
        if let seconds = reader.int("tolerance") {
            if seconds < 1 || seconds > 86_400 {
                diagnostics.report(.invalidValue, "must be between 1 and 86400 seconds", path: reader.childPath("tolerance"), at: reader.optional("tolerance"))
            } else {
                endpoint.tolerance = .seconds(Int64(seconds))
            }
        }
        endpoint.allowSHA1 = reader.bool("allow_sha1") ?? false
        if let signatureNode = reader.optional("signature") {
            endpoint.signature = decodeSignature(signatureNode, path: reader.childPath("signature"), diagnostics: diagnostics)
        }
        if let authNode = reader.optional("auth") {
            endpoint.authentication = decodeAuthentication(authNode, path: reader.childPath("auth"), diagnostics: diagnostics)
        }
        endpoint.unauthenticated = reader.bool("unauthenticated") ?? false
        endpoint.topics = reader.stringList("topics") ?? []
        endpoint.confirmSubscriptions = reader.bool("confirm_subscriptions") ?? true
        endpoint.eventName = reader.string("event")
        if let name = endpoint.eventName, name.isEmpty {
            diagnostics.report(.invalidValue, "may not be empty", path: reader.childPath("event"), at: reader.optional("event"))
        }
        endpoint.idHeader = reader.string("id_header")
        endpoint.keepFailedBodies = reader.bool("keep_failed_bodies") ?? false
        if let size = reader.int("max_body_size") {
            if size < 1 {
                diagnostics.report(.invalidValue, "must be a positive number of bytes", path: reader.childPath("max_body_size"), at: reader.optional("max_body_size"))
            } else {
                endpoint.maximumBodySize = size
            }
        }
        if let templateNode = reader.optional("template"),
            let text = ObjectReader.string(templateNode, path: reader.childPath("template"), diagnostics: diagnostics)
        {
            endpoint.template = WebhookTemplate(text: text, source: templateNode.location)
            for name in uppercaseHeaderReferences(in: text) {
                diagnostics.report(
                    .invalidValue, "templates see header names in lowercase; `headers.\(name)` would always be empty", path: reader.childPath("template"),
                    at: templateNode, hint: "write headers.\(name.lowercased())")
            }
        }
        endpoint.samplePath = reader.string("sample")
        if endpoint.samplePath != nil, endpoint.template == nil {
            diagnostics.report(.invalidValue, "a sample is only used to check a `template`", path: reader.childPath("sample"), at: reader.optional("sample"))
        }
        reader.rejectUnknown(known: knownFields)
        guard complete else { return nil }
        endpoint.check(node: node, path: path, diagnostics: diagnostics)
        return endpoint
    }

    /// Cross-field rules: what each preset needs in order to trust a request.
    func check(node: RuleNode, path: String, diagnostics: Diagnostics) {
        let verifiedByCredential = signature != nil || authentication != nil || unauthenticated
        let secretsPath = path.isEmpty ? "secrets" : "\(path).secrets"
        switch preset {
        case .github, .stripe, .slack:
            if secrets.isEmpty {
                diagnostics.report(
                    .missingField, "the \(preset.rawValue) preset verifies signatures and needs its signing secret", path: secretsPath, at: node,
                    hint: "secrets: [env:\(slug.uppercased().replacingDashes())_SECRET]")
            }
        case .awsSNS:
            if topics.isEmpty {
                diagnostics.report(
                    .missingField, "the aws-sns preset needs the topic ARNs it accepts", path: path.isEmpty ? "topics" : "\(path).topics", at: node,
                    hint: "topics: [arn:aws:sns:us-east-1:123456789012:my-topic]")
            }
        case .awsS3, .cloudevents, .generic:
            if !verifiedByCredential, !(preset == .awsS3 && !topics.isEmpty) {
                diagnostics.report(
                    .missingField, "the \(preset.rawValue) preset needs a way to trust requests: `signature`, `auth`\(preset == .awsS3 ? ", `topics` (SNS-signed deliveries)" : ""), or `unauthenticated: true`",
                    path: path, at: node)
            }
        }
        if signature != nil, secrets.isEmpty {
            diagnostics.report(.missingField, "a `signature` scheme needs the signing secret", path: secretsPath, at: node)
        }
        if unauthenticated, signature != nil || authentication != nil {
            diagnostics.report(.invalidValue, "`unauthenticated: true` contradicts `signature` / `auth`", path: path.isEmpty ? "unauthenticated" : "\(path).unauthenticated", at: node)
        }
    }

    static func isValidSlug(_ slug: String) -> Bool {
        !slug.isEmpty && slug.utf8.count <= 64
            && slug.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
                case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
                default: false
                }
            } && slug != "." && slug != ".."
    }

    static func decodeSignature(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> HMACScheme? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        let header = reader.string("header", required: true)
        var algorithm = DigestAlgorithm.sha256
        if let text = reader.string("algorithm") {
            if let parsed = DigestAlgorithm(rawValue: text.lowercased()) { algorithm = parsed } else {
                diagnostics.report(.invalidValue, "must be sha1, sha256 or sha512", path: reader.childPath("algorithm"), at: reader.optional("algorithm"))
            }
        }
        var encoding = ByteEncoding.hex
        if let text = reader.string("encoding") {
            if let parsed = ByteEncoding(rawValue: text.lowercased()) { encoding = parsed } else {
                diagnostics.report(.invalidValue, "must be hex or base64", path: reader.childPath("encoding"), at: reader.optional("encoding"))
            }
        }
        let prefix = reader.string("prefix") ?? ""
        let timestampHeader = reader.string("timestamp_header")
        let layout = reader.string("signed_payload")
        if let layout, !layout.contains("{body}") {
            diagnostics.report(
                .invalidValue, "must contain {body}: a signature that does not cover the body proves nothing about it", path: reader.childPath("signed_payload"),
                at: reader.optional("signed_payload"))
        }
        if let layout, layout.contains("{timestamp}"), timestampHeader == nil {
            diagnostics.report(.missingField, "{timestamp} in signed_payload needs `timestamp_header`", path: reader.childPath("timestamp_header"), at: node)
        }
        reader.rejectUnknown(known: signatureFields)
        guard let header else { return nil }
        return HMACScheme(header: header, algorithm: algorithm, encoding: encoding, prefix: prefix, timestampHeader: timestampHeader, signedPayload: layout)
    }

    static func decodeAuthentication(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> RequestAuthentication? {
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        defer { reader.rejectUnknown(known: ["bearer", "basic"]) }
        if let bearer = reader.optional("bearer") {
            guard let references = decodeCredentialReferences(bearer, path: reader.childPath("bearer"), diagnostics: diagnostics) else { return nil }
            return .bearer(references)
        }
        if let basic = reader.optional("basic") {
            guard var basicReader = ObjectReader(basic, path: reader.childPath("basic"), diagnostics: diagnostics) else { return nil }
            let username = basicReader.string("username", required: true)
            let passwordNode = basicReader.optional("password")
            basicReader.rejectUnknown(known: ["username", "password"])
            guard let passwordNode else {
                diagnostics.report(.missingField, "needs `password: env:NAME` (or a list of references while rotating)", path: basicReader.childPath("password"), at: basic)
                return nil
            }
            let passwords = decodeCredentialReferences(passwordNode, path: basicReader.childPath("password"), diagnostics: diagnostics)
            guard let username, let passwords else { return nil }
            return .basic(username: username, passwords: passwords)
        }
        diagnostics.report(.missingField, "needs `bearer: env:NAME` or `basic: {username: ..., password: env:NAME}`", path: path, at: node)
        return nil
    }
}

extension WebhookEndpoint {
    /// The header names a template reads as `headers.<name>` with capital letters (header names reach templates
    /// lowercased, whatever case the sender used, so such a reference never matches).
    static func uppercaseHeaderReferences(in template: String) -> [String] {
        var names: [String] = []
        var rest = template[...]
        while let found = rest.range(of: "headers.") {
            let name = rest[found.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            if name.contains(where: \.isUppercase), !names.contains(String(name)) { names.append(String(name)) }
            rest = rest[found.upperBound...]
        }
        return names
    }

    /// One secret reference, or a list of them (any is accepted: the old and the new one while rotating).
    static func decodeCredentialReferences(_ node: RuleNode, path: String, diagnostics: Diagnostics) -> [SecretReference]? {
        var items: [(node: RuleNode, path: String)] = []
        switch node.kind {
        case .string: items = [(node, path)]
        case .array(let list) where !list.isEmpty: items = list.enumerated().map { ($0.element, "\(path)[\($0.offset)]") }
        default:
            diagnostics.report(
                .invalidValue, "must be a secret reference (`env:NAME` or `file:PATH`) or a list of them, not \(node.kindDescription)", path: path, at: node,
                hint: "while rotating, list the old and the new one: [env:TOKEN, env:TOKEN_NEXT]")
            return nil
        }
        var references: [SecretReference] = []
        for item in items {
            guard let text = ObjectReader.string(item.node, path: item.path, diagnostics: diagnostics) else { return nil }
            do {
                references.append(try SecretReference(parsing: text))
            } catch {
                diagnostics.report(error.code, error.reason, path: item.path, at: item.node, hint: error.hint)
                return nil
            }
        }
        return references
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" || $0 == "." ? "_" : $0 }) }
}
