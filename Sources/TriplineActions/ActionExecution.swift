public import Foundation
public import TriplineCore

/// One attempt at one outbox entry, as a handler sees it: the entry, its template context, and the services a
/// handler may use.
public struct ActionExecution: Sendable {
    /// The outbox entry.
    public var entry: OutboxEntry
    /// This attempt's number (1 for the first).
    public var attempt: Int
    /// The template context: `automation`, `event`, `firing`, `labels`, `delivery`.
    public var context: JSONValue
    /// The services.
    public var environment: ActionEnvironment

    /// Creates an execution.
    public init(entry: OutboxEntry, attempt: Int, environment: ActionEnvironment) {
        self.entry = entry
        self.attempt = attempt
        self.environment = environment
        self.context = Self.templateContext(entry: entry, attempt: attempt)
    }

    /// The action being run.
    public var action: Action { entry.action }

    /// The stable idempotency key of the entry.
    public var idempotencyKey: String { entry.idempotencyKey }

    /// Builds the template context of an entry.
    public static func templateContext(entry: OutboxEntry, attempt: Int) -> JSONValue {
        let key = entry.bucketingLabels.keys.sorted().compactMap { entry.bucketingLabels[$0] }.joined(separator: "/")
        return .object([
            "automation": .object(["id": .string(entry.automationID.lowercasedText), "name": .string(entry.automationName)]),
            "event": entry.triggeringEvent?.jsonValue ?? .null,
            "firing": .object([
                "id": .string(entry.firingID.lowercasedText), "time": .string(entry.firedAt.rfc3339),
                "labels": .object(entry.bucketingLabels.mapValues(JSONValue.string)), "key": .string(key),
            ]),
            "labels": .object(entry.bucketingLabels.mapValues(JSONValue.string)),
            "delivery": .object([
                "id": .string(entry.id), "attempt": .int(Int64(attempt)), "idempotency_key": .string(entry.idempotencyKey),
                "action_index": .int(Int64(entry.actionIndex)),
            ]),
        ])
    }

    /// Renders the string field `name` of the action, or returns `nil` when it is absent.
    /// - Throws: ``ActionFailure`` (permanent) when the field is not a string or does not render.
    public func render(_ name: String) throws -> String? {
        guard let value = action.fields[name], value != .null else { return nil }
        guard let template = value.stringValue else { throw ActionFailure(.permanent, "\(name): must be a string") }
        return try render(template, field: name)
    }

    /// Renders one template.
    public func render(_ template: String, field: String) throws -> String {
        do {
            return try environment.templates.render(template, context: context)
        } catch {
            throw ActionFailure.template(field: field, error)
        }
    }

    /// Renders every string inside `value` (keys stay as written).
    public func renderJSON(_ value: JSONValue, field: String) throws -> JSONValue {
        switch value {
        case .string(let template): return .string(try render(template, field: field))
        case .array(let items): return .array(try items.enumerated().map { try renderJSON($0.element, field: "\(field)[\($0.offset)]") })
        case .object(let object):
            var result: [String: JSONValue] = [:]
            for (key, member) in object { result[key] = try renderJSON(member, field: "\(field).\(key)") }
            return .object(result)
        default: return value
        }
    }

    /// The destination the action names, which must be of one of `kinds`.
    /// - Throws: ``ActionFailure`` (permanent) when the action names none, or an unknown one, or one of another kind.
    public func destination(of kinds: Set<Destination.Kind>) throws -> Destination {
        guard let name = action.fields["destination"]?.stringValue else {
            if action.fields["block_document_id"] != nil {
                throw ActionFailure.configuration("Prefect block documents cannot be used here; name a destination declared in rules/")
            }
            throw ActionFailure.configuration("the action names no destination")
        }
        guard let destination = environment.destinations.destination(named: name) else {
            throw ActionFailure.configuration("no destination named \"\(name)\" is declared in rules/")
        }
        guard kinds.contains(destination.kind) else {
            throw ActionFailure.configuration(
                "destination \"\(name)\" is a \(destination.kind.rawValue) destination; \(action.type) needs \(kinds.map(\.rawValue).sorted().joined(separator: " or "))")
        }
        return destination
    }

    /// Resolves a secret of a destination.
    public func secret(_ value: SecretValue?, field: String, of destination: Destination) throws -> String {
        guard let value else { throw ActionFailure.configuration("destination \"\(destination.name)\" has no \(field)") }
        return try environment.secrets.resolve(value, field: "destination \"\(destination.name)\" \(field)")
    }
}

/// The services handlers use; the server builds one and hands it to the dispatcher.
public struct ActionEnvironment: Sendable {
    /// Renders templates.
    public var templates: any TemplateRenderer
    /// The destinations declared in rules/.
    public var destinations: DestinationDirectory
    /// Resolves secret references.
    public var secrets: SecretResolver
    /// Where emitted events go.
    public var events: any EventSink
    /// Pauses and resumes automations.
    public var automations: (any AutomationControl)?
    /// The current time.
    public var clock: @Sendable () -> Instant
    /// The local runner, for `run-deployment` without a destination and the flow-run actions on its runs.
    public var runner: LocalRunner?

    /// Creates an environment.
    public init(
        templates: any TemplateRenderer, destinations: DestinationDirectory, secrets: SecretResolver = SecretResolver(), events: any EventSink,
        automations: (any AutomationControl)? = nil, runner: LocalRunner? = nil,
        clock: @escaping @Sendable () -> Instant = { Instant(seconds: Date().timeIntervalSince1970) }
    ) {
        self.runner = runner
        self.templates = templates
        self.destinations = destinations
        self.secrets = secrets
        self.events = events
        self.automations = automations
        self.clock = clock
    }
}
