public import Foundation
public import TriplineCore

/// Where a secret comes from: `env:NAME` (an environment variable) or `file:PATH` (a file's content without its
/// trailing newline). Rules files hold only these references, never a secret itself.
public enum SecretReference: Sendable, Hashable, CustomStringConvertible {
    case environment(String)
    case file(String)

    /// Parses `env:NAME` or `file:PATH`.
    /// - Throws: A ``TriplineError`` (`.invalidValue`) for anything else, e.g. an inline secret.
    public init(parsing text: String) throws(TriplineError) {
        if text.hasPrefix("env:"), text.count > 4 {
            self = .environment(String(text.dropFirst(4)))
        } else if text.hasPrefix("file:"), text.count > 5 {
            self = .file(String(text.dropFirst(5)))
        } else {
            throw TriplineError(
                .invalidValue, "must be a reference to a secret, `env:NAME` or `file:PATH`; secrets are never written in rules files",
                hint: "put the secret in an environment variable and write env:THAT_VARIABLE")
        }
    }

    /// The reference as written (it names where the secret is, not the secret).
    public var description: String {
        switch self {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        }
    }

    /// Reads the secret.
    /// - Parameter environment: The process environment (injectable for tests).
    /// - Throws: A ``TriplineError`` (`.io`) naming the reference — never the value — when it cannot be read or is empty.
    public func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws(TriplineError) -> Secret {
        let bytes: [UInt8]
        switch self {
        case .environment(let name):
            guard let value = environment[name] else { throw TriplineError(.io, "the environment variable \(name) is not set") }
            bytes = Array(value.utf8)
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else { throw TriplineError(.io, "cannot read the secret file \(path)") }
            var content = [UInt8](data)
            while let last = content.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { content.removeLast() }
            bytes = content
        }
        guard !bytes.isEmpty else { throw TriplineError(.io, "the secret \(self) is empty") }
        return Secret(bytes: bytes, reference: self)
    }
}

/// A secret's value. It prints as its reference, so that it cannot end up in a log or an error by accident.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret bytes.
    public let bytes: [UInt8]
    /// Where it came from.
    public let reference: SecretReference

    /// Creates a secret (tests; the server resolves references).
    public init(bytes: [UInt8], reference: SecretReference) {
        self.bytes = bytes
        self.reference = reference
    }

    /// The secret as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { "<secret \(reference)>" }
    public var debugDescription: String { description }
}
