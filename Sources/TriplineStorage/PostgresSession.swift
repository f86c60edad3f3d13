internal import Foundation
internal import Logging
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
internal import PostgresNIO
import Synchronization
internal import TriplineCore

/// Where a PostgreSQL database is, from a `postgres://user:password@host:port/database?sslmode=...` URL (also
/// `?host=/socket/dir` for a Unix socket). ``description`` never shows the password.
struct PostgresEndpoint: Sendable, CustomStringConvertible {
    enum TLSMode: String, Sendable { case disable, prefer, require, verify }

    var host = "127.0.0.1"
    var port = 5432
    var socketDirectory: String?
    var user = "postgres"
    var password: String?
    var database = "postgres"
    var tls = TLSMode.prefer

    /// Parses `url`.
    /// - Throws: A ``TriplineError`` with code `.usage` naming what is wrong (never echoing the password).
    init(url: String) throws(TriplineError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw TriplineError(.usage, "--database-url must be postgres://user:password@host:port/database, e.g. postgres://tripline@127.0.0.1:5432/tripline")
        }
        if let host = components.host, !host.isEmpty { self.host = host }
        if let port = components.port { self.port = port }
        if let user = components.percentEncodedUser, !user.isEmpty { self.user = user.removingPercentEncoding ?? user }
        if let password = components.percentEncodedPassword { self.password = password.removingPercentEncoding ?? password }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty { database = path }
        let local = ["127.0.0.1", "localhost", "::1"].contains(host)
        tls = local ? .disable : .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require": tls = .require
                case "verify-ca", "verify-full": tls = .verify
                default:
                    throw TriplineError(.usage, "--database-url: sslmode must be disable, prefer, require or verify-full, got \"\(item.value ?? "")\"")
                }
            case "host": socketDirectory = item.value
            case "application_name", "connect_timeout": continue
            default: throw TriplineError(.usage, "--database-url: unknown parameter \"\(item.name)\" (known: sslmode, host)")
            }
        }
    }

    var description: String {
        if let socketDirectory { return "postgres://\(user)@/\(database)?host=\(socketDirectory)" }
        return "postgres://\(user)@\(host):\(port)/\(database)"
    }

    var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            if let socketDirectory {
                var configuration = PostgresConnection.Configuration(
                    unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: database)
                configuration.options.additionalStartupParameters = Self.sessionSettings
                return configuration
            }
            // As libpq: `prefer` and `require` encrypt without checking the certificate, `verify-ca`/`verify-full` check it
            // against the system's trust store.
            var unverified = TLSConfiguration.makeClientConfiguration()
            unverified.certificateVerification = .none
            let tls: PostgresConnection.Configuration.TLS
            switch self.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: unverified))
            case .require: tls = .require(try NIOSSLContext(configuration: unverified))
            case .verify: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            var configuration = PostgresConnection.Configuration(
                host: host, port: port, username: user, password: password, database: database, tls: tls)
            configuration.options.additionalStartupParameters = Self.sessionSettings
            return configuration
        }
    }

    /// Server-side TCP keepalives, so that PostgreSQL notices a vanished process within about 30 s and releases what
    /// its session held (the evaluation leadership's advisory lock above all).
    static let sessionSettings = [("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "4")]
}

/// A value bound to a statement parameter.
enum SQLValue: Sendable {
    case text(String?)
    case int(Int64?)
    case bytes(Data?)
    case texts([String])
    case ints([Int64])
    case bool(Bool)

    static func int(_ value: Int) -> SQLValue { .int(Int64(value)) }
    static func int(_ value: Int?) -> SQLValue { .int(value.map(Int64.init)) }
}

/// One connection to PostgreSQL used from plain threads: every statement blocks the calling thread until PostgreSQL
/// answered. The ingest writer and the leader's evaluator run on threads of their own, so this keeps the store's
/// transactions synchronous like SQLite's; async callers go through ``perform(_:)``, which runs on the session's own
/// dispatch queue. A broken connection is replaced on the next use.
final class PostgresSession: Sendable {
    let name: String
    let endpoint: PostgresEndpoint
    let logger: Logger
    let queue: DispatchQueue
    private let lock = NSRecursiveLock()
    private let current = Mutex<PostgresConnection?>(nil)
    /// Counts the connections this session opened; a change means an earlier connection (and whatever it held, such as
    /// an advisory lock) is gone.
    let generation = Atomic<Int>(0)
    private static let ids = Atomic<Int>(0)

    init(name: String, endpoint: PostgresEndpoint, logger: Logger) {
        self.name = name
        self.endpoint = endpoint
        self.logger = logger
        self.queue = DispatchQueue(label: "tripline.postgres.\(name)")
    }

    /// Set by ``close()``: the session does not connect again.
    private let closed = Atomic<Bool>(false)
    /// The connection of the open transaction: every statement of a transaction runs on the connection that began
    /// it, and a connection lost in the middle fails the transaction instead of being replaced (statements on a new
    /// connection would commit one by one).
    private let pinned = Mutex<PostgresConnection?>(nil)
    /// The longest a statement may take before its connection is closed (a half-open connection would otherwise hang
    /// the session for ever).
    let statementTimeout: TimeAmount = .seconds(120)

    /// The open connection, connecting first when there is none or it closed.
    func connection() throws -> PostgresConnection {
        if let open = current.withLock({ $0 }), !open.isClosed { return open }
        guard !closed.load(ordering: .relaxed) else { throw TriplineError(.io, "the database session \(name) is closed") }
        let id = Self.ids.add(1, ordering: .relaxed).newValue
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: endpoint.connectionConfiguration, id: id, logger: logger
            ).wait()
        } catch {
            throw TriplineError(.io, "cannot connect to PostgreSQL at \(endpoint): \(Self.describe(error))")
        }
        current.withLock { $0 = connection }
        generation.add(1, ordering: .relaxed)
        return connection
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func execute(_ sql: String, _ values: [SQLValue] = []) throws -> [PostgresRow] {
        try run(sql, values).rows
    }

    /// Runs one query and hands each row to `onRow` as it arrives, without holding the whole result in memory: the rows
    /// are read with back-pressure by a task (so `onRow`'s work, such as decoding, runs on Swift's pool, not on the
    /// connection's event loop) while the calling thread waits.
    func stream(_ sql: String, _ values: [SQLValue] = [], onRow: @escaping @Sendable (PostgresRow) throws -> Void) throws {
        let query = PostgresQuery(unsafeSQL: sql, binds: Self.bindings(values))
        let connection = try pinned.withLock({ $0 }) ?? self.connection()
        let timeout = connection.eventLoop.scheduleTask(in: statementTimeout) { let _: EventLoopFuture<Void> = connection.close() }
        defer { timeout.cancel() }
        let failure = Mutex<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        let logger = self.logger
        Task {
            do {
                for try await row in try await connection.query(query, logger: logger) { try onRow(row) }
            } catch {
                failure.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        if let error = failure.withLock({ $0 }) {
            if connection.isClosed { current.withLock { $0 = nil } }
            throw StorageError(statement: sql, underlying: error)
        }
    }

    /// Runs one statement and returns how many rows it changed.
    func update(_ sql: String, _ values: [SQLValue] = []) throws -> Int {
        try run(sql, values).metadata.rows ?? 0
    }

    private func run(_ sql: String, _ values: [SQLValue]) throws -> PostgresQueryResult {
        let query = PostgresQuery(unsafeSQL: sql, binds: Self.bindings(values))
        let connection: PostgresConnection
        if let held = pinned.withLock({ $0 }) {
            guard !held.isClosed else { throw TriplineError(.io, "the connection to PostgreSQL was lost during a transaction; it rolled back") }
            connection = held
        } else {
            connection = try self.connection()
        }
        let timeout = connection.eventLoop.scheduleTask(in: statementTimeout) { let _: EventLoopFuture<Void> = connection.close() }
        defer { timeout.cancel() }
        do {
            return try connection.query(query, logger: logger).wait()
        } catch {
            if connection.isClosed { current.withLock { $0 = nil } }
            throw StorageError(statement: sql, underlying: error)
        }
    }

    /// Runs `body` between BEGIN and COMMIT (ROLLBACK when it throws), holding the session for its whole length.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let connection = try self.connection()
        pinned.withLock { $0 = connection }
        defer { pinned.withLock { $0 = nil } }
        try execute("BEGIN")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            // A failed connection rolled back on its own; otherwise roll back explicitly.
            if !connection.isClosed { _ = try? execute("ROLLBACK") }
            throw error
        }
    }

    /// The generation of the connection the open transaction runs on (see ``generation``).
    var transactionGeneration: Int { generation.load(ordering: .relaxed) }

    /// Runs `transaction(body)`, again (up to three times in all) when PostgreSQL aborted it for a deadlock or a
    /// serialization failure: for bodies that only write to the database, never to memory.
    func retryingTransaction<T>(_ body: () throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try transaction(body)
            } catch where attempt < 3 && ["40P01", "40001"].contains(Self.sqlState(error) ?? "") {
                attempt += 1
                logger.debug("retrying a transaction PostgreSQL aborted", metadata: ["sqlstate": "\(Self.sqlState(error) ?? "")"])
            }
        }
    }

    /// Runs `body` exclusively on the session's queue, for async callers.
    func perform<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                self.lock.lock()
                defer { self.lock.unlock() }
                continuation.resume(with: Result { try body(self) })
            }
        }
    }

    /// Runs `body` in a transaction on the session's queue, for async callers; a deadlock or serialization failure
    /// runs it again (the body must only write to the database).
    func performTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.retryingTransaction { try body(self) } })
            }
        }
    }

    /// Closes the connection; the session stays closed.
    func close() {
        closed.store(true, ordering: .relaxed)
        if let open = current.withLock({ connection -> PostgresConnection? in
            defer { connection = nil }
            return connection
        }) {
            try? open.close().wait()
        }
    }

    deinit {
        // PostgresNIO wants its connections closed before they are released.
        if let open = current.withLock({ $0 }), !open.isClosed {
            let closing: EventLoopFuture<Void> = open.close()
            if !open.eventLoop.inEventLoop { try? closing.wait() }
        }
    }

    static func bindings(_ values: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .text(let text): bindings.append(text)
            case .int(let number): bindings.append(number)
            case .bytes(let data): bindings.append(data.map { ByteBuffer(bytes: $0) })
            case .texts(let texts): bindings.append(texts)
            case .ints(let numbers): bindings.append(numbers)
            case .bool(let flag): bindings.append(flag)
            }
        }
        return bindings
    }

    /// PostgreSQL's own message for a server error, or the error's description.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let code = error.serverInfo?[.sqlState].map { " (\($0))" } ?? ""
                return message + code
            }
            // Connection failures: the code and the underlying error (refused, TLS, timeout); never the configuration.
            return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
        }
        return String(describing: error)
    }

    /// The SQLSTATE of a server error, if it is one.
    static func sqlState(_ error: any Error) -> String? {
        let underlying = (error as? StorageError)?.underlying ?? error
        return (underlying as? PSQLError)?.serverInfo?[.sqlState]
    }
}

/// A failed statement: PostgreSQL's message and the statement's first words, never its parameters (they may hold
/// event payloads).
struct StorageError: Error, CustomStringConvertible {
    let statement: String
    let underlying: any Error

    var description: String {
        let head = statement.split(whereSeparator: \.isWhitespace).prefix(4).joined(separator: " ")
        return "PostgreSQL: \(PostgresSession.describe(underlying)) in \"\(head) ...\""
    }
}

extension PostgresRow {
    /// Decodes the column named `name`.
    func value<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        try makeRandomAccess()[name].decode(T.self)
    }
}

/// Column access by name on a random-access row.
struct ColumnReader {
    let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) { self.row = row.makeRandomAccess() }

    func string(_ name: String) throws -> String { try row[name].decode(String.self) }
    func optionalString(_ name: String) throws -> String? { try row[name].decode(String?.self) }
    func int(_ name: String) throws -> Int { Int(try row[name].decode(Int64.self)) }
    func int64(_ name: String) throws -> Int64 { try row[name].decode(Int64.self) }
    func optionalInt(_ name: String) throws -> Int? { try row[name].decode(Int64?.self).map(Int.init) }
    func data(_ name: String) throws -> Data? { try row[name].decode(Data?.self) }
}
