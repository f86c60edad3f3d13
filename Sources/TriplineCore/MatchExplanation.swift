/// Why an event does or does not reach an event trigger: the static criteria (event name, `match`,
/// `match_related`, `match_payload`), each with what was expected and what the event had.
public struct MatchExplanation: Sendable, Hashable {
    /// Whether every criterion holds.
    public var matches: Bool { failures.isEmpty }
    /// One line per failed criterion, naming the criterion, the pattern and the event's value.
    public var failures: [String]

    /// Explains how `event` fares against `trigger`.
    public init(trigger: EventTrigger, event: Event) {
        var failures: [String] = []
        if event.event == "prefect.log.write" {
            failures.append("prefect.log.write events never reach automations")
        }
        if let rejection = EventNameFilter(expect: trigger.expect, after: trigger.after).rejection(of: event.event) {
            failures.append(rejection)
        }
        if let entry = trigger.match.firstMismatch(in: event.resource) {
            failures.append(Self.describe(entry, value: event.resource[entry.label], field: "match", resource: "the event's resource"))
        }
        for (index, spec) in trigger.matchRelated.enumerated() where !spec.includes(event.related) {
            let field = trigger.matchRelatedIsList ? "match_related[\(index)]" : "match_related"
            if event.related.isEmpty {
                failures.append("\(field): the event has no related resources")
                continue
            }
            // Show the closest candidate: the related resource failing the fewest labels.
            let scored = event.related.map { resource in
                (resource, spec.entries.filter { entry in !entry.patterns.contains { $0.matches(resource[entry.label]) } })
            }
            let best = scored.min { $0.1.count < $1.1.count }!
            let role = best.0.role ?? "?"
            let entry = best.1[0]
            failures.append(
                Self.describe(entry, value: best.0[entry.label], field: field, resource: "related resource \"\(best.0.id)\" (role \(role)), the closest of \(event.related.count),"))
        }
        if let predicate = trigger.matchPayload, let mismatch = predicate.firstMismatch(in: event.payload) {
            let found = mismatch.found.map { "is \($0.jsonText.prefix(120))" } ?? "is missing"
            let wanted: String
            switch mismatch.entry.condition {
            case .patterns(let patterns, _): wanted = "one of [\(patterns.map { "\"\($0)\"" }.joined(separator: ", "))]"
            case .comparisons(let comparisons):
                wanted = comparisons.map { "\($0.0.rawValue) \($0.1.jsonText)" }.joined(separator: " and ")
            }
            failures.append("match_payload[\"\(mismatch.entry.path)\"]: wanted \(wanted), but the payload value \(found)")
        }
        self.failures = failures
    }

    static func describe(_ entry: ResourceSpecification.Entry, value: String?, field: String, resource: String) -> String {
        let patterns = entry.patterns.map { "\"\($0)\"" }.joined(separator: ", ")
        guard let value else {
            return "\(field)[\"\(entry.label)\"]: \(resource) has no label \"\(entry.label)\" (a missing label never matches, not even a negated pattern)"
        }
        var text = "\(field)[\"\(entry.label)\"]: \"\(value)\" on \(resource) matches none of [\(patterns)]"
        if entry.patterns.count > 1, entry.patterns.allSatisfy(\.negated) {
            text += " (note: a list of negations is OR-ed, so it matches almost everything)"
        }
        return text
    }
}
