import Synchronization
public import TriplineCore

/// The destinations declared in rules/, replaced as a whole when the rules are reloaded.
public final class DestinationDirectory: Sendable {
    let byName: Mutex<[String: Destination]>

    /// Creates a directory holding `destinations`.
    public init(_ destinations: [Destination] = []) {
        byName = Mutex(Dictionary(destinations.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last }))
    }

    /// The destination named `name`.
    public func destination(named name: String) -> Destination? {
        byName.withLock { $0[name] }
    }

    /// Replaces every destination.
    public func replace(_ destinations: [Destination]) {
        let table = Dictionary(destinations.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        byName.withLock { $0 = table }
    }

    /// Every destination, by name.
    public var all: [Destination] {
        byName.withLock { $0.values.sorted { $0.name < $1.name } }
    }
}
