public import Foundation
internal import GRDB
import Synchronization
public import Logging
public import TriplineCore

/// The embedded store: one SQLite file in WAL mode, behind ``DurableStore``.
///
/// Writes go through GRDB's serialized writer (its own dispatch queue, never the cooperative pool); reads use the
/// pool's concurrent readers. With `synchronous=FULL` (the default) a committed transaction survives power loss,
/// so an event acknowledged after ``write(_:)`` returns is durable.
public final class SQLiteStore: DurableStore {
    /// Settings of the store.
    public struct Configuration: Sendable {
        /// The database file.
        public var path: String
        /// `FULL` (durable on power loss, the default) or `NORMAL` (durable on process crash only; faster).
        public var synchronous: String = "FULL"

        /// Creates settings for the file at `path`.
        public init(path: String) { self.path = path }
    }

    let pool: DatabasePool
    let logger: Logger
    private let checkpointer: Checkpointer?
    /// Outbox entries claimed by this process's dispatcher and not finished yet. Claims live in memory: one process
    /// owns an SQLite file, and after a restart every unfinished entry is simply due again.
    let claimed = Mutex<Set<String>>([])

    /// Opens (creating if needed) the database and applies pending migrations.
    /// - Throws: A ``TriplineError`` with code `.io` naming the file when it cannot be opened or migrated.
    public init(configuration: Configuration, logger: Logger) throws {
        var config = GRDB.Configuration()
        let synchronous = configuration.synchronous.uppercased() == "NORMAL" ? "NORMAL" : "FULL"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA busy_timeout = 5000")
            // The checkpointer below copies the log into the file off the commit path; the automatic checkpoint
            // inside a commit stays, at a longer log, to make the log start over.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Checkpointer.backstopPages)")
        }
        config.label = "tripline"
        // Two readers are plenty for the API's queries; each connection holds its own page cache.
        config.maximumReaderCount = 2
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
            // The pool turns on WAL mode after `prepareDatabase` ran, and sets the writer to synchronous=NORMAL as it
            // does: set the writer's level again, or FULL would only hold for the readers, which never commit.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
            try Self.migrator.migrate(pool)
        } catch {
            throw TriplineError(.io, "cannot open the database \(configuration.path): \(error)")
        }
        self.logger = logger
        // Commits are acknowledged as durable on the strength of this setting: check what SQLite says it is.
        let effective: String
        do {
            effective = try Self.synchronousLevel(of: pool)
        } catch {
            throw TriplineError(.io, "cannot read the synchronous level of the database \(configuration.path): \(error)")
        }
        guard effective == synchronous else {
            throw TriplineError(.io, "the database \(configuration.path) commits with synchronous=\(effective), not the configured \(synchronous)")
        }
        do {
            checkpointer = try Checkpointer(path: configuration.path, synchronous: synchronous, logger: logger)
        } catch {
            logger.warning("cannot open a connection for background checkpoints; commits will checkpoint the log", metadata: ["error": "\(error)"])
            checkpointer = nil
        }
    }

    deinit { checkpointer?.stop() }

    /// How the connection that commits syncs: `OFF`, `NORMAL`, `FULL` or `EXTRA`, as SQLite reports it.
    public var writerSynchronous: String {
        get throws { try Self.synchronousLevel(of: pool) }
    }

    static func synchronousLevel(of pool: DatabasePool) throws -> String {
        let level = try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") } ?? -1
        let names = ["OFF", "NORMAL", "FULL", "EXTRA"]
        return names.indices.contains(level) ? names[level] : "\(level)"
    }

    /// Copies the write-ahead log into the database file on its own connection and thread, every few milliseconds
    /// while commits arrive. SQLite's automatic checkpoint runs inside the commit that crosses its threshold, so
    /// every few thousand events one commit (and every request waiting on it) paid for copying megabytes and an extra
    /// fsync; a passive checkpoint here runs alongside commits instead.
    final class Checkpointer: Sendable {
        /// The pause between checkpoints while commits arrive: short, so that each copies and syncs little (a long
        /// copy's sync holds up the commits' own syncs), doubling up to `idleInterval` while nothing is committed.
        static let busyInterval = 5
        static let idleInterval = 200
        /// The commit-path checkpoint threshold, in pages (40 MB of log). The log only starts over after a checkpoint
        /// copied all of it with no commit in between, which steady ingest never allows here; the writer's own
        /// checkpoint at this length does, and finds little left to copy.
        static let backstopPages = 10_000

        let connection: DatabaseQueue
        let stopping = DispatchSemaphore(value: 0)
        let stopped = DispatchSemaphore(value: 0)

        init(path: String, synchronous: String, logger: Logger) throws {
            var config = GRDB.Configuration()
            config.label = "tripline-checkpointer"
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                try db.execute(sql: "PRAGMA busy_timeout = 5000")
            }
            connection = try DatabaseQueue(path: path, configuration: config)
            let thread = Thread { [connection, stopping, stopped] in
                var failing = false
                var pause = Self.busyInterval
                var lastFrames = -1
                while stopping.wait(timeout: .now() + .milliseconds(pause)) == .timedOut {
                    do {
                        // Passive: copies what is committed without holding commits back.
                        let frames = try connection.writeWithoutTransaction { db in try db.checkpoint(.passive).walFrameCount }
                        pause = frames == lastFrames ? min(pause * 2, Self.idleInterval) : Self.busyInterval
                        lastFrames = frames
                        failing = false
                    } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                        // Another checkpoint holds the log: the writer's own at `backstopPages`, which under steady
                        // ingest runs every few hundred milliseconds and starts the log over. Expected, not a fault.
                        logger.debug("checkpoint skipped: another checkpoint is running", metadata: ["error": "\(error)"])
                    } catch {
                        if !failing { logger.warning("checkpointing the database log failed; commits will checkpoint it", metadata: ["error": "\(error)"]) }
                        failing = true
                    }
                }
                stopped.signal()
            }
            thread.name = "tripline-checkpoint"
            thread.start()
        }

        func stop() {
            stopping.signal()
            stopped.wait()
        }
    }

    /// The migrations the file at `path` has not applied (all of them when it does not exist yet).
    static func pendingMigrations(path: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: path) else { return migrator.migrations }
        do {
            let queue = try DatabaseQueue(path: path)
            let applied = try queue.read { db in try migrator.appliedIdentifiers(db) }
            return migrator.migrations.filter { !applied.contains($0) }
        } catch {
            throw TriplineError(.io, "cannot read the database \(path): \(error)")
        }
    }

    /// The schema, as named append-only migrations recorded in the database.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("2026-11-23-initial") { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        occurred INTEGER NOT NULL,
                        received INTEGER NOT NULL,
                        event TEXT NOT NULL,
                        resource_id TEXT NOT NULL,
                        body TEXT NOT NULL
                    );
                    CREATE INDEX events_occurred ON events(occurred);
                    CREATE INDEX events_event ON events(event, occurred);
                    CREATE INDEX events_resource ON events(resource_id, occurred);
                    CREATE TABLE automations (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        body TEXT NOT NULL,
                        created INTEGER NOT NULL,
                        updated INTEGER NOT NULL
                    );
                    CREATE TABLE engine_buckets (
                        trigger_id TEXT NOT NULL,
                        bucket_key TEXT NOT NULL,
                        body TEXT NOT NULL,
                        PRIMARY KEY (trigger_id, bucket_key)
                    );
                    CREATE TABLE engine_state (
                        name TEXT PRIMARY KEY,
                        body TEXT NOT NULL
                    );
                    CREATE TABLE firings (
                        id TEXT PRIMARY KEY,
                        automation_id TEXT NOT NULL,
                        automation_name TEXT NOT NULL,
                        trigger_id TEXT NOT NULL,
                        triggering_event_id TEXT,
                        at INTEGER NOT NULL,
                        labels TEXT NOT NULL,
                        action_count INTEGER NOT NULL
                    );
                    CREATE INDEX firings_at ON firings(at);
                    CREATE TABLE outbox (
                        id TEXT PRIMARY KEY,
                        firing_id TEXT NOT NULL REFERENCES firings(id),
                        automation_id TEXT NOT NULL,
                        action_index INTEGER NOT NULL,
                        action TEXT NOT NULL,
                        status TEXT NOT NULL DEFAULT 'pending',
                        attempts INTEGER NOT NULL DEFAULT 0,
                        available_at INTEGER NOT NULL,
                        created INTEGER NOT NULL
                    );
                    CREATE INDEX outbox_pending ON outbox(status, available_at);
                    """)
        }
        migrator.registerMigration("2026-11-23-event-resources") { db in
            // One row per related resource of an event (the primary one is events.resource_id), so that queries on
            // related resources use an index instead of reading every event.
            try db.execute(
                sql: """
                    CREATE TABLE event_resources (
                        event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
                        role TEXT NOT NULL,
                        resource_id TEXT NOT NULL
                    );
                    CREATE INDEX event_resources_resource ON event_resources(resource_id, role);
                    CREATE INDEX event_resources_event ON event_resources(event_seq);
                    INSERT INTO event_resources (event_seq, role, resource_id)
                        SELECT events.seq, json_extract(related.value, '$."prefect.resource.role"'), json_extract(related.value, '$."prefect.resource.id"')
                        FROM events, json_each(events.body, '$.related') AS related;
                    """)
        }
        registerWebhookMigrations(&migrator)
        migrator.registerMigration("2026-11-23-deliveries") { db in
            // Attempts of each outbox entry; suppressed firings (cooldown); re-drives keep their attempts.
            try db.execute(
                sql: """
                    ALTER TABLE outbox ADD COLUMN last_error TEXT;
                    ALTER TABLE outbox ADD COLUMN updated INTEGER;
                    ALTER TABLE outbox ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX outbox_automation ON outbox(automation_id, created);
                    CREATE INDEX outbox_created ON outbox(created);
                    ALTER TABLE firings ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX firings_automation ON firings(automation_id, suppressed, at);
                    CREATE TABLE delivery_attempts (
                        outbox_id TEXT NOT NULL REFERENCES outbox(id),
                        attempt INTEGER NOT NULL,
                        started INTEGER NOT NULL,
                        duration_us INTEGER NOT NULL,
                        outcome TEXT NOT NULL,
                        status_code INTEGER,
                        error TEXT,
                        PRIMARY KEY (outbox_id, attempt)
                    );
                    """)
        }
        registerFlowRunMigrations(&migrator)
        return migrator
    }

    // MARK: - Writes

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T {
        try await pool.write { db in
            try body(Transaction(db: db))
        }
    }

    public func writeBlocking<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        // Blocks: callers run it on a dedicated thread (the ingest writer), not on the cooperative pool.
        try pool.write { db in try body(Transaction(db: db)) }
    }

    struct Transaction: StoreTransaction {
        let db: Database

        func insertEvent(_ event: Event, received: Instant, encoded: String?) throws -> Bool {
            // Cached: compiled once per connection, not once per event.
            let statement = try db.cachedStatement(
                sql: "INSERT OR IGNORE INTO events (id, occurred, received, event, resource_id, body) VALUES (?, ?, ?, ?, ?, ?)")
            try statement.execute(
                arguments: [
                    event.id.lowercasedText, event.occurred.microseconds, received.microseconds, event.event, event.resource.id,
                    encoded ?? event.storageText,
                ])
            guard db.changesCount > 0 else { return false }
            if !event.related.isEmpty {
                let seq = db.lastInsertedRowID
                let related = try db.cachedStatement(sql: "INSERT INTO event_resources (event_seq, role, resource_id) VALUES (?, ?, ?)")
                for resource in event.related { try related.execute(arguments: [seq, resource.role ?? "", resource.id]) }
            }
            return true
        }

        func saveBuckets(_ changes: [(address: BucketAddress, bucket: Bucket?)]) throws {
            for change in changes {
                let trigger = change.address.trigger.lowercasedText
                let key = JSONValue.array(change.address.key.map(JSONValue.string)).jsonText
                if let bucket = change.bucket {
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO engine_buckets (trigger_id, bucket_key, body) VALUES (?, ?, ?)")
                        .execute(arguments: [trigger, key, bucket.storageText])
                } else {
                    try db.cachedStatement(sql: "DELETE FROM engine_buckets WHERE trigger_id = ? AND bucket_key = ?").execute(arguments: [trigger, key])
                }
            }
        }

        func saveAuxiliaryState(_ state: JSONValue) throws {
            try db.execute(sql: "INSERT OR REPLACE INTO engine_state (name, body) VALUES ('auxiliary', ?)", arguments: [state.jsonText])
        }

        func recordFiring(_ firing: Firing, actions: [Action], cooldown: TimeSpan?) throws {
            let id = firing.id.lowercasedText
            let automationID = firing.automationID.lowercasedText
            var suppressed = false
            if let cooldown, cooldown > .zero, !actions.isEmpty {
                let last = try Int64.fetchOne(
                    db.cachedStatement(sql: "SELECT MAX(at) FROM firings WHERE automation_id = ? AND suppressed = 0 AND action_count > 0"),
                    arguments: [automationID])
                if let last, firing.at.microseconds - last < cooldown.microseconds { suppressed = true }
            }
            try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO firings (id, automation_id, automation_name, trigger_id, triggering_event_id, at, labels, action_count, suppressed)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [
                    id, automationID, firing.automationName, firing.triggerID.lowercasedText,
                    firing.triggeringEvent?.id.lowercasedText, firing.at.microseconds,
                    JSONValue.object(firing.bucketingLabels.mapValues(JSONValue.string)).jsonText, actions.count, suppressed ? 1 : 0,
                ])
            guard db.changesCount > 0 else { return }
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            for (index, action) in actions.enumerated() {
                try db.cachedStatement(
                    sql: """
                        INSERT OR IGNORE INTO outbox (id, firing_id, automation_id, action_index, action, available_at, created, status, updated)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        "\(id)/\(index)", id, automationID, index, action.jsonValue.jsonText, now, now, suppressed ? "suppressed" : "pending", now,
                    ])
            }
        }
    }

    // MARK: - Reads

    public func forEachEvent(matching filter: EventFilter, _ visit: @escaping @Sendable (Event) -> Bool) async throws {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: [any DatabaseValueConvertible] = []
            if let since = filter.since {
                conditions.append("occurred >= ?")
                arguments.append(since.microseconds)
            }
            if let until = filter.until {
                conditions.append("occurred <= ?")
                arguments.append(until.microseconds)
            }
            if let names = filter.names, !names.isEmpty {
                conditions.append("event IN (\(Array(repeating: "?", count: names.count).joined(separator: ",")))")
                arguments += names
            }
            if let ids = filter.resource?.ids, !ids.isEmpty {
                conditions.append("resource_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))")
                arguments += ids
            }
            func placeholders(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ",") }
            if let prefixes = filter.namePrefixes, !prefixes.isEmpty {
                conditions.append("(" + prefixes.map { _ in "substr(event, 1, length(?)) = ?" }.joined(separator: " OR ") + ")")
                for prefix in prefixes { arguments += [prefix, prefix] }
            }
            for related in filter.related {
                guard let ids = related.ids, !ids.isEmpty else { continue }
                conditions.append("seq IN (SELECT event_seq FROM event_resources WHERE resource_id IN (\(placeholders(ids.count))))")
                arguments += ids
            }
            for any in filter.anyResource {
                guard let ids = any.ids, !ids.isEmpty else { continue }
                conditions.append(
                    "(resource_id IN (\(placeholders(ids.count))) OR seq IN (SELECT event_seq FROM event_resources WHERE resource_id IN (\(placeholders(ids.count)))))")
                arguments += ids
                arguments += ids
            }
            if let ids = filter.ids, !ids.isEmpty {
                conditions.append("id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))")
                arguments += ids.map { $0.lowercasedText }
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let order = filter.ascending ? "ASC" : "DESC"
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT body, received FROM events \(whereClause) ORDER BY occurred \(order), seq \(order)",
                arguments: StatementArguments(arguments))
            while let row = try cursor.next() {
                let body: String = row["body"]
                guard var event = try? Event.decode(JSONValue.parse(body)) else { continue }
                event.received = Instant(microseconds: row["received"])
                guard filter.matches(event) else { continue }
                if !visit(event) { return }
            }
        }
    }

    public func loadEngineState() async throws -> (buckets: [Bucket], auxiliary: JSONValue?) {
        try await pool.read { db in
            var buckets: [Bucket] = []
            for row in try Row.fetchAll(db, sql: "SELECT body FROM engine_buckets") {
                let body: String = row["body"]
                buckets.append(try Bucket(json: JSONValue.parse(body)))
            }
            let auxiliary = try String.fetchOne(db, sql: "SELECT body FROM engine_state WHERE name = 'auxiliary'").map { try JSONValue.parse($0) }
            return (buckets, auxiliary)
        }
    }

    public func storedAutomations() async throws -> [StoredAutomation] {
        let rows: [(body: String, created: Int64, updated: Int64)] = try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT body, created, updated FROM automations ORDER BY created").map { ($0["body"], $0["created"], $0["updated"]) }
        }
        var result: [StoredAutomation] = []
        for row in rows {
            let body = row.body
            let loaded = Automation.load(text: body, file: "database")
            guard let automation = loaded.automations.first else {
                logger.error("a stored automation no longer loads", metadata: ["errors": "\(loaded.errors.map(\.description))"])
                continue
            }
            result.append(
                StoredAutomation(automation: automation, created: Instant(microseconds: row.created), updated: Instant(microseconds: row.updated)))
        }
        return result
    }

    public func saveAutomation(_ stored: StoredAutomation) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO automations (id, name, body, created, updated) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    stored.automation.id.lowercasedText, stored.automation.name, stored.automation.jsonValue.jsonText,
                    stored.created.microseconds, stored.updated.microseconds,
                ])
        }
    }

    public func deleteAutomation(id: UUID) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM automations WHERE id = ?", arguments: [id.lowercasedText])
            return db.changesCount > 0
        }
    }

    public func recentFirings(limit: Int) async throws -> [FiringRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT f.*, e.body AS event_body, e.received AS event_received FROM firings f LEFT JOIN events e ON e.id = f.triggering_event_id
                    ORDER BY f.at DESC LIMIT ?
                    """, arguments: [limit]
            ).map { row in
                let labels = (try? JSONValue.parse(row["labels"] as String))?.objectValue?.compactMapValues(\.stringValue) ?? [:]
                var event = (row["event_body"] as String?).flatMap { try? Event.decode(JSONValue.parse($0)) }
                if let received = row["event_received"] as Int64? { event?.received = Instant(microseconds: received) }
                var firing = Firing(
                    automationID: UUID(text: row["automation_id"]) ?? UUID(), automationName: row["automation_name"],
                    triggerID: UUID(text: row["trigger_id"]) ?? UUID(), triggeringEvent: event, at: Instant(microseconds: row["at"]),
                    bucketingLabels: labels)
                firing.id = UUID(text: row["id"]) ?? firing.id
                return FiringRecord(firing: firing, actionCount: row["action_count"])
            }
        }
    }

    public func deleteEvents(receivedBefore cutoff: Instant, limit: Int) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received < ? ORDER BY received LIMIT ?)",
                arguments: [cutoff.microseconds, limit])
            return db.changesCount
        }
    }

    /// Counts rows of a table, for tests and diagnostics.
    public func count(table: String) async throws -> Int {
        guard ["events", "event_resources", "automations", "engine_buckets", "firings", "outbox", "delivery_attempts", "webhook_deliveries", "flow_runs"].contains(table)
        else { return 0 }
        return try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }
}
