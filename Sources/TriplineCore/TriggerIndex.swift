/// Finds the event triggers interested in an event name without looking at the others.
///
/// Index keys without wildcards sit in a dictionary; keys with wildcards sit in a trie under their literal prefix,
/// so that looking an event name up costs one dictionary probe plus one step per byte of the name, and then only
/// the keys that can match are tested. Within a key, triggers whose `match` pins `prefect.resource.id` to one literal
/// value are grouped by that value (and likewise triggers whose `match_related` pins a related resource's id), so
/// thousands of triggers that differ only by resource cost one probe per resource of the event.
struct TriggerIndex: Sendable {
    struct Group: Sendable {
        var glob: Glob
        /// label name → label value → triggers whose `match` requires exactly that value.
        var byLabel: [String: [String: [Int32]]] = [:]
        var byRelatedID: [String: [Int32]] = [:]
        var unconstrained: [Int32] = []
    }

    struct TrieNode: Sendable {
        var children: [UInt8: Int32] = [:]
        var groups: [Int32] = []
    }

    private var exact: [String: Int32] = [:]
    private var groups: [Group] = []
    private var groupByKey: [String: Int32] = [:]
    private var trie: [TrieNode] = [TrieNode()]
    /// Triggers with a negated key (Tripline's D1): tested for every event.
    private var negated: [Int32] = []

    init() {}

    /// What a trigger's resource filters pin to one literal value, if anything.
    enum Pin: Sendable, Hashable {
        case none
        /// `match` requires this literal value of this label.
        case label(String, String)
        /// A `match_related` spec requires a related resource with this `prefect.resource.id`.
        case related(String)
    }

    /// Adds a trigger under its index keys.
    mutating func insert(trigger: Int32, keys: [String], pin: Pin) {
        for key in keys {
            if key.hasPrefix("!") {
                if negated.last != trigger { negated.append(trigger) }
                continue
            }
            let groupIndex: Int32
            if let existing = groupByKey[key] {
                groupIndex = existing
            } else {
                groupIndex = Int32(groups.count)
                let glob = Glob(key)
                groups.append(Group(glob: glob))
                groupByKey[key] = groupIndex
                if glob.isLiteral {
                    exact[key] = groupIndex
                } else {
                    var node = 0
                    for byte in glob.literalPrefix.utf8 {
                        if let next = trie[node].children[byte] {
                            node = Int(next)
                        } else {
                            trie.append(TrieNode())
                            trie[node].children[byte] = Int32(trie.count - 1)
                            node = trie.count - 1
                        }
                    }
                    trie[node].groups.append(groupIndex)
                }
            }
            switch pin {
            case .label(let label, let value): groups[Int(groupIndex)].byLabel[label, default: [:]][value, default: []].append(trigger)
            case .related(let id): groups[Int(groupIndex)].byRelatedID[id, default: []].append(trigger)
            case .none: groups[Int(groupIndex)].unconstrained.append(trigger)
            }
        }
    }

    /// Appends to `into` every trigger whose index key matches `name` (a trigger may appear more than once).
    func candidates(name: String, resource: Resource, related: [Resource], into result: inout [Int32]) {
        if let group = exact[name] { collect(groups[Int(group)], resource: resource, related: related, into: &result) }
        var node = 0
        var utf8 = name
        utf8.withUTF8 { bytes in
            var index = 0
            while true {
                for groupIndex in trie[node].groups {
                    let group = groups[Int(groupIndex)]
                    if group.glob.matches(name) {
                        collect(group, resource: resource, related: related, into: &result)
                    }
                }
                guard index < bytes.count, let next = trie[node].children[bytes[index]] else { break }
                node = Int(next)
                index += 1
            }
        }
        result.append(contentsOf: negated)
    }

    private func collect(_ group: Group, resource: Resource, related: [Resource], into result: inout [Int32]) {
        result.append(contentsOf: group.unconstrained)
        for (label, table) in group.byLabel {
            if let value = resource.labels[label], let pinned = table[value] { result.append(contentsOf: pinned) }
        }
        if !group.byRelatedID.isEmpty {
            for relatedResource in related {
                if let pinned = group.byRelatedID[relatedResource.id] { result.append(contentsOf: pinned) }
            }
        }
    }
}
