public import Foundation

/// An event identifier: a UUID, as Prefect requires.
public typealias EventID = UUID

/// A resource: a flat set of string labels with at least `prefect.resource.id`.
public struct Resource: Sendable, Hashable {
    /// The label that identifies a resource.
    public static let idLabel = "prefect.resource.id"
    /// The label that gives a related resource its role.
    public static let roleLabel = "prefect.resource.role"
    /// The label that names a resource.
    public static let nameLabel = "prefect.resource.name"

    /// All labels, including `prefect.resource.id`.
    public var labels: [String: String]

    /// Creates a resource from its labels.
    public init(_ labels: [String: String]) { self.labels = labels }

    /// The resource's id (`prefect.resource.id`); empty when absent, which validation rejects.
    public var id: String { labels[Self.idLabel] ?? "" }
    /// The role of a related resource (`prefect.resource.role`).
    public var role: String? { labels[Self.roleLabel] }

    /// The value of `label`, or `nil` when the resource lacks it.
    @inline(__always)
    public subscript(label: String) -> String? { labels[label] }
}

/// An event in Prefect's wire format.
public struct Event: Sendable, Hashable {
    /// Client-provided unique id; the same id delivered twice is one event.
    public var id: EventID
    /// When the event happened (event time).
    public var occurred: Instant
    /// The event's name, e.g. `prefect.flow-run.Failed`.
    public var event: String
    /// The primary resource.
    public var resource: Resource
    /// Related resources, each with a role.
    public var related: [Resource]
    /// Any JSON object.
    public var payload: [String: JSONValue] {
        get {
            switch payloadStorage {
            case .value(let value): value
            case .raw(let raw): raw.value
            }
        }
        set { payloadStorage = .value(newValue) }
    }
    /// The payload's text as received, when it was kept unparsed (webhook bodies): storing the event copies it.
    public var rawPayload: RawJSONObject? {
        if case .raw(let raw) = payloadStorage { return raw }
        return nil
    }
    var payloadStorage: Payload
    /// The id of an event that causally precedes this one, if any.
    public var follows: EventID?
    /// When the server received the event; defaults to `occurred` when not known.
    public var received: Instant?

    /// Creates an event.
    public init(
        id: EventID = UUID(),
        occurred: Instant,
        event: String,
        resource: Resource,
        related: [Resource] = [],
        payload: [String: JSONValue] = [:],
        follows: EventID? = nil,
        received: Instant? = nil
    ) {
        self.id = id
        self.occurred = occurred
        self.event = event
        self.resource = resource
        self.related = related
        self.payloadStorage = .value(payload)
        self.follows = follows
        self.received = received
    }

    /// Creates an event whose payload stays the JSON text it arrived as until something reads it.
    public init(
        id: EventID = UUID(), occurred: Instant, event: String, resource: Resource, related: [Resource] = [], rawPayload: RawJSONObject,
        follows: EventID? = nil, received: Instant? = nil
    ) {
        self.init(id: id, occurred: occurred, event: event, resource: resource, related: related, follows: follows, received: received)
        self.payloadStorage = .raw(rawPayload)
    }

    /// A payload as values or as text (compared and hashed by value either way).
    enum Payload: Sendable, Hashable {
        case value([String: JSONValue])
        case raw(RawJSONObject)

        static func == (lhs: Payload, rhs: Payload) -> Bool {
            switch (lhs, rhs) {
            case (.raw(let left), .raw(let right)): left == right
            case (.value(let left), .value(let right)): left == right
            case (.raw(let raw), .value(let value)), (.value(let value), .raw(let raw)): raw.value == value
            }
        }

        func hash(into hasher: inout Hasher) {
            switch self {
            case .value(let value): hasher.combine(value)
            case .raw(let raw): hasher.combine(raw.value)
            }
        }
    }

    /// Resolves a label the way `for_each` does: a plain label reads the primary resource; `related:<role>:<label>`
    /// reads the first related resource having that role (and only that one).
    public func resourceLabel(_ reference: String) -> String? {
        if reference.hasPrefix("related:") {
            let parts = reference.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            let role = parts[1]
            guard let first = related.first(where: { $0.labels[Resource.roleLabel].map { $0 == role } ?? false }) else { return nil }
            return first.labels[String(parts[2])]
        }
        return resource.labels[reference]
    }
}

extension Event {
    /// Prefect's limits on events.
    public struct Limits: Sendable, Hashable {
        /// Maximum size of an event's JSON text, in bytes.
        public var maximumEventSize: Int = 1_500_000
        /// Maximum labels on one resource.
        public var maximumLabelsPerResource: Int = 500
        /// Maximum related resources.
        public var maximumRelatedResources: Int = 100
        /// Maximum length of an event name.
        public var maximumEventNameLength: Int = 1024

        /// Prefect's defaults.
        public init() {}

        /// No limits: for reading back events that were accepted once (by a route that may allow more).
        public static let unlimited: Limits = {
            var limits = Limits()
            limits.maximumEventSize = .max
            limits.maximumLabelsPerResource = .max
            limits.maximumRelatedResources = .max
            limits.maximumEventNameLength = .max
            return limits
        }()
    }
}
