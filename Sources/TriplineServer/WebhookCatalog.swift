public import Foundation
public import Logging
import Synchronization
public import TriplineCore
public import TriplineIngest

/// The webhook endpoints declared in `rules/webhooks/`, by slug, with their secrets read. Reloaded with the rules
/// folder; an invalid folder keeps the running endpoints. An endpoint whose secret cannot be read stays listed and
/// answers 503 until it can (so that `tripline serve` starts with the shipped rules on any machine).
public final class WebhookCatalog: Sendable {
    /// One endpoint as the server holds it.
    public struct Entry: Sendable {
        /// The declaration.
        public var endpoint: WebhookEndpoint
        /// Ready to process requests, when its secrets could be read.
        public var processor: WebhookProcessor?
        /// Why the endpoint cannot take requests (a secret that cannot be read), if so.
        public var problem: String?

        /// The endpoint as the API shows it: no secret and no secret value, only how many there are.
        public var jsonValue: JSONValue {
            let endpoint = self.endpoint
            var object: [String: JSONValue] = [
                "slug": .string(endpoint.slug), "name": .string(endpoint.name), "description": .string(endpoint.description),
                "preset": .string(endpoint.preset.rawValue), "enabled": .bool(endpoint.enabled), "path": .string("/hooks/\(endpoint.slug)"),
                "secrets": .int(Int64(endpoint.secrets.count)), "ready": .bool(processor != nil && endpoint.enabled),
                "problem": problem.map(JSONValue.string) ?? .null, "source_file": endpoint.source.map { .string($0.file ?? "") } ?? .null,
                "keep_failed_bodies": .bool(endpoint.keepFailedBodies),
            ]
            if !endpoint.topics.isEmpty { object["topics"] = .array(endpoint.topics.map(JSONValue.string)) }
            return .object(object)
        }
    }

    let rulesPath: String
    let aws: AWSMessageVerifier
    let renderer: (any TemplateRenderer)?
    let logger: Logger
    let environment: @Sendable () -> [String: String]
    private let state = Mutex<(entries: [String: Entry], fingerprint: String)>(([:], ""))

    /// Creates an empty catalog; call ``reload(force:)`` to load.
    public init(
        rulesPath: String, aws: AWSMessageVerifier, renderer: (any TemplateRenderer)? = nil, logger: Logger,
        environment: @escaping @Sendable () -> [String: String] = { ProcessInfo.processInfo.environment }
    ) {
        self.rulesPath = rulesPath
        self.aws = aws
        self.renderer = renderer
        self.logger = logger
        self.environment = environment
    }

    /// The endpoint for `slug`.
    public func entry(_ slug: String) -> Entry? { state.withLock { $0.entries[slug] } }

    /// Every endpoint, by slug.
    public func all() -> [Entry] { state.withLock { $0.entries.values.sorted { $0.endpoint.slug < $1.endpoint.slug } } }

    /// Loads every webhook file under `paths`; with a renderer, templates are checked too (syntax, and the sample
    /// an endpoint names mapped to valid events).
    /// - Returns: The endpoints and every problem (invalid fields, duplicate slugs, templates), located by file:line.
    public static func load(_ paths: [String], renderer: (any TemplateRenderer)? = nil) throws(TriplineError) -> (
        endpoints: [WebhookEndpoint], errors: [TriplineError]
    ) {
        var endpoints: [WebhookEndpoint] = []
        var errors: [TriplineError] = []
        for file in try RulesLoader.classifiedRuleFiles(paths) where file.kind == .webhooks {
            let loaded = WebhookEndpoint.load(text: try RulesLoader.text(file.path), file: file.path)
            endpoints += loaded.endpoints
            errors += loaded.errors
            if let renderer {
                for endpoint in loaded.endpoints { errors += checkTemplate(endpoint, file: file.path, renderer: renderer) }
            }
        }
        var seen: [String: SourceLocation?] = [:]
        for endpoint in endpoints {
            if let first = seen[endpoint.slug] {
                errors.append(
                    TriplineError(
                        .invalidValue, "another webhook endpoint already uses the slug \"\(endpoint.slug)\"", path: "slug", location: endpoint.source,
                        hint: first.map { "first declared at \($0)" }))
            }
            seen[endpoint.slug] = endpoint.source
        }
        return (endpoints, errors)
    }

    /// Problems of an endpoint's template: its syntax, and what its sample (if any) maps to.
    public static func checkTemplate(_ endpoint: WebhookEndpoint, file: String, renderer: any TemplateRenderer) -> [TriplineError] {
        guard let template = endpoint.template else { return [] }
        do {
            try renderer.check(template.text)
        } catch {
            // The renderer locates the problem within the template; report it in the rules file.
            var located = error
            if let inner = error.location, inner.file == nil, let source = template.source {
                located.reason += " (line \(inner.line) of the template)"
                located.location = source
            } else if located.location == nil {
                located.location = template.source
            }
            if located.path.isEmpty { located.path = "template" }
            return [located]
        }
        guard let sample = endpoint.samplePath else { return [] }
        let path = sample.hasPrefix("/") ? sample : ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(sample)
        guard let data = FileManager.default.contents(atPath: path) else {
            return [TriplineError(.io, "cannot read the sample \(path)", path: "sample", location: endpoint.source)]
        }
        let contentType = path.hasSuffix(".json") ? "application/json" : "text/plain"
        do {
            _ = try template.check(sample: [UInt8](data), contentType: contentType, endpoint: endpoint, renderer: renderer)
            return []
        } catch {
            return [error]
        }
    }

    /// Re-reads the webhook files if the rules folder changed (or always with `force`).
    /// - Returns: The errors found; on errors the running endpoints are kept.
    @discardableResult
    public func reload(force: Bool = false) -> [TriplineError] {
        let fingerprint = RulesLoader.fingerprint(rulesPath)
        if !force, state.withLock({ $0.fingerprint }) == fingerprint { return [] }
        let loaded: (endpoints: [WebhookEndpoint], errors: [TriplineError])
        do {
            loaded = try Self.load([rulesPath], renderer: renderer)
        } catch {
            logger.error("cannot read the rules folder; keeping the running webhook endpoints", metadata: ["error": "\(error)"])
            return [error]
        }
        if !loaded.errors.isEmpty {
            for error in loaded.errors { logger.error("invalid webhook endpoint; keeping the running endpoints", metadata: ["error": "\(error)"]) }
            state.withLock { $0.fingerprint = fingerprint }
            return loaded.errors
        }
        let environment = environment()
        var entries: [String: Entry] = [:]
        for endpoint in loaded.endpoints {
            do {
                let resolved = try ResolvedWebhookEndpoint(endpoint, environment: environment)
                entries[endpoint.slug] = Entry(
                    endpoint: endpoint, processor: WebhookProcessor(endpoint: resolved, aws: aws, renderer: renderer), problem: nil)
            } catch {
                logger.warning(
                    "webhook endpoint not ready: its secret cannot be read", metadata: ["slug": "\(endpoint.slug)", "error": "\(error.reason)"])
                entries[endpoint.slug] = Entry(endpoint: endpoint, processor: nil, problem: error.reason)
            }
        }
        state.withLock { $0 = (entries, fingerprint) }
        if !entries.isEmpty { logger.info("webhook endpoints loaded", metadata: ["endpoints": "\(entries.keys.sorted().joined(separator: ","))"]) }
        return []
    }
}
