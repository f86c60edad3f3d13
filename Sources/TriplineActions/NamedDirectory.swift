public import Foundation
import Synchronization
public import TriplineCore

/// Things declared in rules/ by name (destinations, deployments), replaced as a whole when the rules are reloaded.
public final class NamedDirectory<Value: Sendable>: Sendable {
    let byName: Mutex<[String: Value]>
    let name: @Sendable (Value) -> String

    /// Creates a directory holding `values`, each known by `name`.
    public init(_ values: [Value], name: @escaping @Sendable (Value) -> String) {
        self.name = name
        byName = Mutex(Dictionary(values.map { (name($0), $0) }, uniquingKeysWith: { _, last in last }))
    }

    /// The value named `name`.
    public func value(named name: String) -> Value? {
        byName.withLock { $0[name] }
    }

    /// Replaces every value.
    public func replace(_ values: [Value]) {
        let table = Dictionary(values.map { (name($0), $0) }, uniquingKeysWith: { _, last in last })
        byName.withLock { $0 = table }
    }

    /// Every value, by name.
    public var all: [Value] {
        byName.withLock { table in table.keys.sorted().compactMap { table[$0] } }
    }
}

/// The destinations declared in rules/.
public typealias DestinationDirectory = NamedDirectory<Destination>

/// The local runner's deployments declared in rules/deployments/.
public typealias DeploymentDirectory = NamedDirectory<Deployment>

extension NamedDirectory where Value == Destination {
    /// Creates a directory holding `destinations`.
    public convenience init(_ destinations: [Destination] = []) {
        self.init(destinations, name: { $0.name })
    }

    /// The destination named `name`.
    public func destination(named name: String) -> Destination? { value(named: name) }
}

extension NamedDirectory where Value == Deployment {
    /// Creates a directory holding `deployments`.
    public convenience init(_ deployments: [Deployment] = []) {
        self.init(deployments, name: { $0.name })
    }

    /// The deployment with the id `id`.
    public func deployment(id: UUID) -> Deployment? { all.first { $0.id == id } }
}
