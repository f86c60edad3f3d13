public import Foundation

/// Prefect's `EventFilter`: which stored events a query or a live feed wants.
public struct EventFilter: Sendable, Hashable {
    /// Filters on one resource (the primary, a related one, or any).
    public struct ResourceFilter: Sendable, Hashable {
        /// Exact resource ids, any of which matches.
        public var ids: [String]?
        /// Resource id prefixes, any of which matches.
        public var idPrefixes: [String]?
        /// Labels, as in a trigger's `match`.
        public var labels: ResourceSpecification?
        /// Roles (related resources only), any of which matches.
        public var roles: [String]?
        /// (id, role) pairs (related resources only), any of which matches.
        public var idsInRoles: [[String]]?

        /// Creates a filter.
        public init(ids: [String]? = nil, idPrefixes: [String]? = nil, labels: ResourceSpecification? = nil, roles: [String]? = nil) {
            self.ids = ids
            self.idPrefixes = idPrefixes
            self.labels = labels
            self.roles = roles
        }

        func matches(_ resource: Resource) -> Bool {
            if let ids, !ids.contains(resource.id) { return false }
            if let idPrefixes, !idPrefixes.contains(where: { resource.id.hasPrefix($0) }) { return false }
            if let labels, !labels.matches(resource) { return false }
            if let roles, !roles.contains(resource.role ?? "") { return false }
            if let idsInRoles, !idsInRoles.contains(where: { $0 == [resource.id, resource.role ?? ""] }) { return false }
            return true
        }
    }

    /// Earliest `occurred`, inclusive.
    public var since: Instant?
    /// Latest `occurred`, inclusive.
    public var until: Instant?
    /// Event names must start with one of these.
    public var namePrefixes: [String]?
    /// Event names must not start with any of these.
    public var excludedNamePrefixes: [String]?
    /// Event names must be one of these.
    public var names: [String]?
    /// Event names must be none of these.
    public var excludedNames: [String]?
    /// The primary resource must match.
    public var resource: ResourceFilter?
    /// Each of these must be matched by some related resource.
    public var related: [ResourceFilter] = []
    /// Each of these must be matched by the primary or some related resource.
    public var anyResource: [ResourceFilter] = []
    /// Exact event ids.
    public var ids: [EventID]?
    /// Text that must appear in the event's JSON (case-insensitive).
    public var text: String?
    /// Newest first (Prefect's default) or oldest first.
    public var ascending = false

    /// A filter that matches everything.
    public init() {}

    /// Whether `event` passes every condition.
    public func matches(_ event: Event) -> Bool {
        if let since, event.occurred < since { return false }
        if let until, event.occurred > until { return false }
        if let names, !names.contains(event.event) { return false }
        if let excludedNames, excludedNames.contains(event.event) { return false }
        if let namePrefixes, !namePrefixes.contains(where: { event.event.hasPrefix($0) }) { return false }
        if let excludedNamePrefixes, excludedNamePrefixes.contains(where: { event.event.hasPrefix($0) }) { return false }
        if let ids, !ids.contains(event.id) { return false }
        if let resource, !resource.matches(event.resource) { return false }
        for filter in related where !event.related.contains(where: filter.matches) { return false }
        for filter in anyResource where !(filter.matches(event.resource) || event.related.contains(where: filter.matches)) { return false }
        if let text, !text.isEmpty, !event.jsonValue.jsonText.lowercased().contains(text.lowercased()) { return false }
        return true
    }
}

extension EventFilter {
    /// Decodes Prefect's `EventFilter` JSON.
    /// - Parameter now: Used for Prefect's defaults (`since` = 180 days before the start of today, `until` = now).
    /// - Throws: A ``TriplineError`` naming the offending field.
    public static func decode(_ json: JSONValue?, now: Instant, applyDefaults: Bool = true) throws(TriplineError) -> EventFilter {
        var filter = EventFilter()
        if applyDefaults {
            let day: Int64 = 86_400_000_000
            let startOfDay = now.microseconds - ((now.microseconds % day) + day) % day
            filter.since = Instant(microseconds: startOfDay - 180 * day)
            filter.until = now
        }
        guard let json, json != .null else { return filter }
        let diagnostics = Diagnostics()
        guard var reader = ObjectReader(RuleNode(json: json), path: "filter", diagnostics: diagnostics) else { throw diagnostics.errors[0] }
        if let occurred = nonNull(reader.optional("occurred")), var inner = ObjectReader(occurred, path: "filter.occurred", diagnostics: diagnostics) {
            if let since = inner.string("since") { filter.since = try instant(since, "filter.occurred.since") }
            if let until = inner.string("until") { filter.until = try instant(until, "filter.occurred.until") }
            inner.rejectUnknown(known: ["since", "until"])
        }
        if let event = nonNull(reader.optional("event")), var inner = ObjectReader(event, path: "filter.event", diagnostics: diagnostics) {
            filter.namePrefixes = nonEmpty(inner.stringList("prefix"))
            filter.excludedNamePrefixes = nonEmpty(inner.stringList("exclude_prefix"))
            filter.names = nonEmpty(inner.stringList("name"))
            filter.excludedNames = nonEmpty(inner.stringList("exclude_name"))
            inner.rejectUnknown(known: ["prefix", "exclude_prefix", "name", "exclude_name"])
        }
        if let resource = nonNull(reader.optional("resource")) {
            filter.resource = resourceFilter(resource, path: "filter.resource", diagnostics: diagnostics, related: false)
        }
        for (key, isRelated) in [("related", true), ("any_resource", false)] {
            guard let node = reader.optional(key) else { continue }
            var filters: [ResourceFilter] = []
            if case .array(let items) = node.kind {
                for (index, item) in items.enumerated() {
                    if let parsed = resourceFilter(item, path: "filter.\(key)[\(index)]", diagnostics: diagnostics, related: isRelated) {
                        filters.append(parsed)
                    }
                }
            } else if case .null = node.kind {
            } else if let parsed = resourceFilter(node, path: "filter.\(key)", diagnostics: diagnostics, related: isRelated) {
                filters.append(parsed)
            }
            if key == "related" { filter.related = filters } else { filter.anyResource = filters }
        }
        if let ids = nonNull(reader.optional("id")), var inner = ObjectReader(ids, path: "filter.id", diagnostics: diagnostics) {
            if let list = nonEmpty(inner.stringList("id")) {
                var parsed: [EventID] = []
                for text in list {
                    guard let id = EventID(uuidString: text) else {
                        throw TriplineError(.invalidValue, "\"\(text)\" is not a UUID", path: "filter.id.id")
                    }
                    parsed.append(id)
                }
                filter.ids = parsed
            }
            inner.rejectUnknown(known: ["id"])
        }
        if let text = nonNull(reader.optional("text")), var inner = ObjectReader(text, path: "filter.text", diagnostics: diagnostics) {
            filter.text = inner.string("query")
            inner.rejectUnknown(known: ["query"])
        }
        if let order = reader.string("order") {
            switch order {
            case "ASC": filter.ascending = true
            case "DESC": filter.ascending = false
            default: diagnostics.report(TriplineError(.invalidValue, "must be \"ASC\" or \"DESC\"", path: "filter.order"))
            }
        }
        reader.rejectUnknown(known: ["occurred", "event", "resource", "related", "any_resource", "id", "text", "order"])
        if let first = diagnostics.errors.first { throw first }
        return filter
    }

    /// A member whose value is null is the same as an absent one.
    private static func nonNull(_ node: RuleNode?) -> RuleNode? {
        guard let node else { return nil }
        if case .null = node.kind { return nil }
        return node
    }

    /// Prefect treats an empty (or null) list as "no condition", not "matches nothing".
    private static func nonEmpty(_ list: [String]?) -> [String]? {
        guard let list, !list.isEmpty else { return nil }
        return list
    }

    private static func instant(_ text: String, _ path: String) throws(TriplineError) -> Instant {
        guard let instant = Instant(rfc3339: text) else {
            throw TriplineError(.invalidValue, "must be an RFC 3339 timestamp, got \"\(text)\"", path: path)
        }
        return instant
    }

    private static func resourceFilter(_ node: RuleNode, path: String, diagnostics: Diagnostics, related: Bool) -> ResourceFilter? {
        if case .null = node.kind { return nil }
        guard var reader = ObjectReader(node, path: path, diagnostics: diagnostics) else { return nil }
        var filter = ResourceFilter()
        filter.ids = nonEmpty(reader.stringList("id"))
        filter.idPrefixes = nonEmpty(reader.stringList("id_prefix"))
        if let labels = nonNull(reader.optional("labels")) { filter.labels = ResourceSpecification.decode(labels, path: "\(path).labels", diagnostics: diagnostics) }
        var known = ["id", "id_prefix", "labels", "distinct"]
        _ = reader.optional("distinct")
        if related {
            filter.roles = nonEmpty(reader.stringList("role"))
            if let pairs = reader.optional("resources_in_roles"), case .array(let items) = pairs.kind, !items.isEmpty {
                var pairsList: [[String]] = []
                for (index, item) in items.enumerated() {
                    if case .array(let pair) = item.kind, pair.count == 2, case .string(let id) = pair[0].kind, case .string(let role) = pair[1].kind {
                        pairsList.append([id, role])
                    } else {
                        diagnostics.report(.invalidValue, "must be a [resource id, role] pair", path: "\(path).resources_in_roles[\(index)]", at: item)
                    }
                }
                filter.idsInRoles = pairsList.isEmpty ? nil : pairsList
            }
            known += ["role", "resources_in_roles"]
        }
        reader.rejectUnknown(known: known)
        return filter
    }
}
