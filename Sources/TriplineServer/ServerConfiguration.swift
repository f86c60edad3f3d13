internal import Foundation
public import TriplineCore
public import TriplineActions
public import TriplineStorage

/// Everything `tripline serve` can be told. Read from flags, the environment and a config file by the command;
/// passed down as a value.
public struct ServerConfiguration: Sendable {
    /// The address to listen on. Anything but loopback needs API tokens.
    public var host = "127.0.0.1"
    /// The port (Prefect's default).
    public var port = 4200
    /// The SQLite database file.
    public var databasePath = "tripline.sqlite"
    /// `FULL` (an acknowledged event survives power loss) or `NORMAL` (survives a process crash only).
    public var synchronous = "FULL"
    /// A PostgreSQL database (`postgres://...`) instead of the SQLite file: several processes given the same URL share
    /// events, automations, engine state and the outbox.
    public var databaseURL: String?
    /// The rules folder.
    public var rulesPath = "rules"
    /// How long events are kept.
    public var retention: TimeSpan = .seconds(7 * 86_400)
    /// The largest request body accepted, in bytes.
    public var maximumBodySize = 10 * 1024 * 1024
    /// Prefect's limits on a single event.
    public var eventLimits = Event.Limits()
    /// API tokens with their scopes.
    public var tokens: [APIToken] = []
    /// How often the rules folder is checked for changes.
    public var rulesPollInterval: TimeSpan = .seconds(2)
    /// The most events waiting for a commit before ingest answers 503.
    public var maximumPendingEvents = 200_000
    /// Bytes of `POST /api/events` and webhook bodies decoded and waiting for their commit at once; further requests wait with
    /// their bodies undecoded (see ``IngestBudget``). Bounds ingest's memory however many clients send at once.
    public var ingestBudget = 512 * 1024
    /// A folder of pinned SNS signing certificates (`*.pem`, named as the last path component of their
    /// SigningCertURL), used instead of fetching them: for networks without access to AWS, and for tests.
    public var snsCertificatesPath: String?
    /// Adds `POST /api/bench/noop`, which reads the body and answers 204 without storing anything (the HTTP ceiling
    /// that `tripline bench serve` compares ingest with), and `POST /api/bench/parse`, which checks the events as
    /// ingest does and answers 204 without storing them. Off unless TRIPLINE_BENCH_ROUTES=1.
    public var benchmarkRoutes = false

    /// Whether the dispatcher runs the outbox's actions (off only for tests and benchmarks of ingest alone).
    public var dispatchActions = true
    /// The most HTTP connections the action layer keeps open to one host.
    public var actionConnectionsPerHost = 32
    /// The dispatcher's settings.
    public var dispatcher = Dispatcher.Configuration()
    /// Where the local runner keeps each flow run's parameters and output; by default `tripline-runs/` next to the
    /// database.
    public var runsPath: String?
    /// What starts each local run's command (see ``LocalRunner/Configuration/launcher``); `tripline serve` sets
    /// `tripline exec-run`.
    public var runLauncher: [String] = []

    /// The local runner's folder: ``runsPath``, or `tripline-runs/` in the database's folder.
    public var runsFolder: String {
        if let runsPath { return runsPath }
        let folder = (databasePath as NSString).deletingLastPathComponent
        return ((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("tripline-runs")
    }

    /// The defaults.
    public init() {}

    /// Where the data lives: the PostgreSQL database when a URL is set, else the SQLite file.
    public var storeLocation: StoreLocation {
        if let databaseURL { return .postgres(url: databaseURL) }
        return .sqlite(path: databasePath, synchronous: synchronous)
    }

    /// The database for logs, without a password.
    public var databaseDescription: String {
        guard let databaseURL else { return databasePath }
        guard var components = URLComponents(string: databaseURL) else { return "postgres" }
        components.password = nil
        components.query = nil
        return components.string ?? "postgres"
    }

    /// Whether `host` only accepts connections from this machine.
    public var isLoopback: Bool {
        ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.")
    }
}

/// What a token may do. Each scope includes the ones before it.
public enum TokenScope: Int, Sendable, Comparable, CaseIterable {
    /// Post events only.
    case ingest
    /// Read events, automations and firings; post events.
    case read
    /// Everything, including changing automations.
    case admin

    public static func < (lhs: TokenScope, rhs: TokenScope) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Parses `ingest`, `read` or `admin`.
    public init?(name: String) {
        switch name.lowercased() {
        case "ingest": self = .ingest
        case "read": self = .read
        case "admin": self = .admin
        default: return nil
        }
    }
}

/// An API token. Its secret is never printed.
public struct APIToken: Sendable, CustomStringConvertible {
    /// The scope.
    public var scope: TokenScope
    /// The secret.
    public var secret: String
    /// A name for logs (never the secret).
    public var name: String

    /// Creates a token.
    public init(scope: TokenScope, secret: String, name: String) {
        self.scope = scope
        self.secret = secret
        self.name = name
    }

    public var description: String { "token \(name) (\(scope))" }

    /// Tokens shorter than this are refused, so that placeholders and guessable values are not used by accident.
    public static let minimumLength = 16

    /// Parses a tokens file: one token per line, `<scope> <token> [name]`; blank lines and `#` comments are ignored.
    /// - Throws: A ``TriplineError`` naming the line of a malformed entry (without echoing the secret).
    public static func parseFile(_ text: String, file: String) throws(TriplineError) -> [APIToken] {
        var tokens: [APIToken] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let location = SourceLocation(file: file, line: index + 1, column: 1)
            guard parts.count >= 2, let scope = TokenScope(name: parts[0]) else {
                throw TriplineError(.invalidValue, "expected `<ingest|read|admin> <token> [name]`", location: location)
            }
            guard parts[1].count >= minimumLength else {
                throw TriplineError(.invalidValue, "the token is shorter than \(minimumLength) characters", location: location)
            }
            tokens.append(APIToken(scope: scope, secret: parts[1], name: parts.count > 2 ? parts[2] : "\(file):\(index + 1)"))
        }
        return tokens
    }
}
