public import Logging
public import TriplineCore

/// Everything the server needs from its database: the durable store, the outbox and both delivery logs. SQLite (one
/// process, embedded) and PostgreSQL (one or several processes) implement it.
public protocol TriplineStore: DurableStore, Outbox, DeliveryLog, WebhookDeliveryLog, FlowRunStore {
    /// Releases the claims of finished outbox entries once their results are durable (see ``OutboxRecorder``).
    func releaseClaims(_ ids: [String])
    /// Counts rows of a table, for tests and diagnostics.
    func count(table: String) async throws -> Int
    /// Closes the database connections.
    func close()
}

extension SQLiteStore: TriplineStore {
    /// SQLite closes its file when the store is released.
    public func close() {}
}

extension PostgresStore: TriplineStore {}

/// Where the server keeps its data.
public enum StoreLocation: Sendable, Equatable {
    /// An SQLite file (the embedded default); `synchronous` is `FULL` or `NORMAL`.
    case sqlite(path: String, synchronous: String)
    /// A PostgreSQL database shared by every process given the same URL.
    case postgres(url: String)

    /// Opens the store, applying pending migrations.
    /// - Parameter nodeName: This process's name among those sharing a PostgreSQL database (see
    ///   ``PostgresStore/Configuration/nodeName``).
    public func open(logger: Logger, nodeName: String? = nil) throws -> any TriplineStore {
        switch self {
        case .sqlite(let path, let synchronous):
            var configuration = SQLiteStore.Configuration(path: path)
            configuration.synchronous = synchronous
            return try SQLiteStore(configuration: configuration, logger: logger)
        case .postgres(let url):
            var configuration = PostgresStore.Configuration(url: url)
            configuration.nodeName = nodeName
            return try PostgresStore(configuration: configuration, logger: logger)
        }
    }
}

extension StoreLocation {
    /// The migrations the database has not applied yet, by name.
    public func pendingMigrations(logger: Logger) throws -> [String] {
        switch self {
        case .sqlite(let path, _):
            return try SQLiteStore.pendingMigrations(path: path)
        case .postgres(let url):
            let session = PostgresSession(name: "migrate", endpoint: try PostgresEndpoint(url: url), logger: logger)
            defer { session.close() }
            return try PostgresMigrations.pending(on: session)
        }
    }

    /// Applies pending migrations (one process at a time); returns the names applied.
    public func migrate(logger: Logger) throws -> [String] {
        let pending = try pendingMigrations(logger: logger)
        guard !pending.isEmpty else { return [] }
        switch self {
        case .sqlite:
            _ = try open(logger: logger)
            return pending
        case .postgres(let url):
            let endpoint = try PostgresEndpoint(url: url)
            let session = PostgresSession(name: "migrate", endpoint: endpoint, logger: logger)
            defer { session.close() }
            return try PostgresMigrations.apply(on: session, logger: logger)
        }
    }
}
