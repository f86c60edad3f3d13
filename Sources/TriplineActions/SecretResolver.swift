public import Foundation
public import TriplineCore

/// Resolves secret references (`env:NAME`, `file:PATH`) when an action runs. Errors name the reference, never the
/// value.
public struct SecretResolver: Sendable {
    /// The environment variables to read (the process's by default).
    public var environment: [String: String]

    /// Creates a resolver over `environment`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The secret's value.
    /// - Throws: ``ActionFailure`` (configuration, not retried) when the variable is unset or the file unreadable.
    public func resolve(_ value: SecretValue, field: String) throws -> String {
        switch value {
        case .literal(let text):
            return text
        case .environment(let name):
            guard let text = environment[name], !text.isEmpty else {
                throw ActionFailure.configuration("\(field): the environment variable \(name) is not set")
            }
            return text
        case .file(let path):
            // A small file read; secrets files are tiny.
            guard let data = FileManager.default.contents(atPath: path), var text = String(data: data, encoding: .utf8) else {
                throw ActionFailure.configuration("\(field): cannot read the secret file \(path)")
            }
            while text.last == "\n" || text.last == "\r" { text.removeLast() }
            guard !text.isEmpty else { throw ActionFailure.configuration("\(field): the secret file \(path) is empty") }
            return text
        }
    }
}
