public import Foundation
public import TriplineCore

/// Builders for tests: events at readable times, automations from YAML, replays that report firings compactly.
public enum TestEvents {
    /// The origin of test time: 2024-05-01T12:00:00Z.
    public static let origin = Instant(rfc3339: "2024-05-01T12:00:00Z")!

    /// `seconds` after the origin.
    public static func at(_ seconds: Double) -> Instant { origin + TimeSpan(seconds: seconds) }

    /// The UUID `00000000-0000-4000-8000-<number>`: small numbers name events readably.
    public static func id(_ number: Int) -> UUID {
        let digits = String(number)
        return UUID(text: "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits)!
    }

    /// An event numbered `number` (its id is ``id(_:)``), named `name`, occurring `seconds` after the origin.
    public static func event(
        _ number: Int,
        _ name: String,
        at seconds: Double,
        resource: [String: String] = ["prefect.resource.id": "test.resource"],
        related: [[String: String]] = [],
        payload: [String: JSONValue] = [:],
        follows: Int? = nil
    ) -> Event {
        var labels = resource
        if labels[Resource.idLabel] == nil { labels[Resource.idLabel] = "test.resource" }
        return Event(
            id: id(number), occurred: at(seconds), event: name, resource: Resource(labels), related: related.map(Resource.init), payload: payload,
            follows: follows.map(id))
    }

    /// Loads automations from YAML (or JSON) text.
    /// - Throws: The first problem, when the text has any.
    public static func automations(_ yaml: String) throws -> [Automation] {
        let loaded = Automation.load(text: yaml, file: "test.yaml")
        if let first = loaded.errors.first { throw first }
        return loaded.automations
    }

    /// One firing, compactly: the automation's name, the triggering event's number (nil for none) and the firing
    /// time in seconds after the origin.
    public struct Fired: Hashable, Sendable, CustomStringConvertible {
        public var automation: String
        public var event: Int?
        public var at: Double

        public init(_ automation: String, event: Int?, at: Double) {
            self.automation = automation
            self.event = event
            self.at = at
        }

        public var description: String { "\(automation)@\(at)s(event \(event.map(String.init) ?? "nil"))" }
    }

    /// Replays `events` through `automations` (SEMANTICS §9) up to `until` seconds after the origin.
    public static func replay(_ automations: [Automation], _ events: [Event], until: Double, start: Double? = nil) -> [Fired] {
        Replay.run(automations: automations, events: events, until: at(until), start: start.map(at)).map(fired)
    }

    /// A firing in compact form.
    public static func fired(_ firing: Firing) -> Fired {
        let number = firing.triggeringEvent.map { event -> Int in
            Int(event.id.uuidString.suffix(12)) ?? -1
        }
        return Fired(firing.automationName, event: number, at: (firing.at - origin).seconds)
    }
}

/// A deterministic generator (SplitMix64), so that a randomized test sees the same input on every run.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64

    /// Creates a generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
