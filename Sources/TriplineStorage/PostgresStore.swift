public import Foundation
public import Logging
internal import PostgresNIO
import Synchronization
public import TriplineCore

/// The shared store: one PostgreSQL database behind ``DurableStore``, for one or several `tripline serve` processes.
///
/// Each process keeps a few sessions (connections): `writer` for ingest transactions (group commit, as with SQLite),
/// `leader` for the evaluation transactions — it holds the leadership advisory lock, so those transactions can only
/// commit while this process leads —, `api` for reads and small writes, `outbox` for the dispatcher, and `listener`
/// for notifications. Ingest transactions queue every new event for evaluation (`evaluation_queue`) and notify the
/// leader; outbox entries are claimed with `FOR UPDATE SKIP LOCKED` and a lease that the claimant renews.
public final class PostgresStore: SharedStore, Sendable {
    /// Settings of the store.
    public struct Configuration: Sendable {
        /// `postgres://user:password@host:port/database[?sslmode=disable|prefer|require][&host=/socket/dir]`.
        public var url: String
        /// How long a claimed outbox entry stays with its claimant without a renewal; after that another process takes
        /// it over. The claimant renews its claims every third of this.
        public var leaseDuration: TimeSpan = .seconds(30)
        /// Whether opening the store applies pending migrations (`tripline migrate` applies them by hand).
        public var applyMigrations = true
        /// This process's name among those sharing the database, written into outbox claims and local flow runs: it
        /// must be unique among running processes and should stay the same across restarts (`serve` uses
        /// `host:port`), so that a restarted process finds the local runs it left.
        public var nodeName: String?

        /// Creates settings for the database at `url`.
        public init(url: String) { self.url = url }
    }

    let endpoint: PostgresEndpoint
    let configuration: Configuration
    let logger: Logger
    let writer: PostgresSession
    let leader: PostgresSession
    let api: PostgresSession
    let outboxSession: PostgresSession
    /// This process, as written into outbox claims: host name and process id.
    let processName: String
    /// Outbox entries claimed by this process and not finished yet (their leases are renewed).
    let claimed = Mutex<Set<String>>([])
    /// The `leader` session's connection generation when the leadership was taken; another generation means the
    /// connection (and with it the advisory lock) was lost.
    let leadership = Mutex<Int?>(nil)
    let queuedSignal = WakeSignal()
    let background = Mutex<[Task<Void, Never>]>([])
    let listening = Atomic<Bool>(false)

    /// The advisory lock key of the evaluation leadership ("tripline" in ASCII, as a 64-bit number).
    static let leaderLockKey: Int64 = 0x7472_6970_6C69_6E65
    /// The advisory lock key that serializes migrations between processes starting together.
    static let migrationLockKey: Int64 = 0x7472_6970_6D69_6772
    static let queueChannel = "tripline_events"

    /// Connects, applies pending migrations (unless configured not to), and starts renewing outbox leases.
    /// - Throws: A ``TriplineError`` naming the database (never the password) when it cannot be reached or migrated.
    public init(configuration: Configuration, logger: Logger) throws {
        let endpoint = try PostgresEndpoint(url: configuration.url)
        self.endpoint = endpoint
        self.configuration = configuration
        self.logger = logger
        writer = PostgresSession(name: "writer", endpoint: endpoint, logger: logger)
        leader = PostgresSession(name: "leader", endpoint: endpoint, logger: logger)
        api = PostgresSession(name: "api", endpoint: endpoint, logger: logger)
        outboxSession = PostgresSession(name: "outbox", endpoint: endpoint, logger: logger)
        processName = configuration.nodeName ?? "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)"
        do {
            if configuration.applyMigrations {
                let applied = try PostgresMigrations.apply(on: api, logger: logger)
                if !applied.isEmpty { logger.info("database migrated", metadata: ["database": "\(endpoint)", "applied": "\(applied.joined(separator: ", "))"]) }
            } else {
                let pending = try PostgresMigrations.pending(on: api)
                if !pending.isEmpty {
                    throw TriplineError(
                        .io, "the database \(endpoint) lacks \(pending.count) migration(s) (\(pending.joined(separator: ", ")))",
                        hint: "run `tripline migrate --database-url ...`")
                }
            }
        } catch let error as TriplineError {
            throw error
        } catch {
            throw TriplineError(.io, "cannot open the database \(endpoint): \(error)")
        }
        startLeaseRenewal()
    }

    /// Closes every session (the leadership, if held, goes with it).
    public func close() {
        for task in background.withLock({ $0 }) { task.cancel() }
        for session in [writer, leader, api, outboxSession] { session.close() }
    }

    deinit {
        for task in background.withLock({ $0 }) { task.cancel() }
    }

    // MARK: - Writes

    // Ingest transactions only write to the database (the engine runs on the leader), so a deadlock between two
    // processes storing the same ids is simply retried.

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T {
        let me = processName
        return try await writer.performTransaction { session in try body(Transaction(session: session, queueNewEvents: true, claimant: me)) }
    }

    public func writeBlocking<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try writer.retryingTransaction { try body(Transaction(session: writer, queueNewEvents: true, claimant: processName)) }
    }

    struct Transaction: StoreTransaction {
        let session: PostgresSession
        /// Whether new events go into the evaluation queue (ingest); the leader's own events do not (it evaluates them
        /// in the same transaction).
        let queueNewEvents: Bool
        /// This process, as written into outbox claims: finishing an entry another process claimed since changes nothing.
        let claimant: String

        func insertEvent(_ event: Event, received: Instant, encoded: String?) throws -> Bool {
            try insertEvents([event], encoded: encoded.map { [$0] } ?? [], received: received)[0]
        }

        func insertEvents(_ given: [Event], encoded givenEncoded: [String], received: Instant) throws -> [Bool] {
            guard !given.isEmpty else { return [] }
            let allIDs = given.map { $0.id.lowercasedText }
            // An id given twice in the group is stored (and new) only the first time.
            var seen = Set<String>()
            var firsts: [Int] = []
            for (index, id) in allIDs.enumerated() where seen.insert(id).inserted { firsts.append(index) }
            let events = firsts.map { given[$0] }
            let encoded = givenEncoded.count == given.count ? firsts.map { givenEncoded[$0] } : []
            let ids = firsts.map { allIDs[$0] }
            var relatedEvent: [String] = []
            var relatedRole: [String] = []
            var relatedID: [String] = []
            for (index, event) in events.enumerated() {
                for resource in event.related {
                    relatedEvent.append(ids[index])
                    relatedRole.append(resource.role ?? "")
                    relatedID.append(resource.id)
                }
            }
            // One statement for the whole group: the events (first of each id wins, in order), their related
            // resources, and their places in the evaluation queue.
            let rows = try session.execute(
                """
                WITH input AS (
                    SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(id, occurred, event, resource_id, body, ord)
                ), inserted AS (
                    INSERT INTO events (id, occurred, received, event, resource_id, body)
                    SELECT id, occurred, $6, event, resource_id, body FROM input ORDER BY ord
                    ON CONFLICT (id) DO NOTHING RETURNING seq, id
                ), resources AS (
                    INSERT INTO event_resources (event_seq, role, resource_id)
                    SELECT inserted.seq, r.role, r.resource_id FROM inserted
                    JOIN unnest($7::text[], $8::text[], $9::text[]) AS r(event_id, role, resource_id) ON r.event_id = inserted.id
                ), queued AS (
                    INSERT INTO evaluation_queue (event_seq) SELECT seq FROM inserted WHERE $10
                )
                SELECT id FROM inserted
                """,
                [
                    .texts(ids), .ints(events.map(\.occurred.microseconds)), .texts(events.map(\.event)), .texts(events.map(\.resource.id)),
                    .texts(events.enumerated().map { index, event in index < encoded.count ? encoded[index] : event.storageText }),
                    .int(received.microseconds), .texts(relatedEvent), .texts(relatedRole), .texts(relatedID), .bool(queueNewEvents),
                ])
            var new = Set<String>()
            for row in rows { new.insert(try row.value("id", as: String.self)) }
            if queueNewEvents, !new.isEmpty { try session.execute("SELECT pg_notify('\(PostgresStore.queueChannel)', '')") }
            return allIDs.map { new.remove($0) != nil }
        }

        func takeQueuedEvents(limit: Int) throws -> [Event] {
            let rows = try session.execute(
                """
                WITH taken AS (
                    DELETE FROM evaluation_queue WHERE event_seq IN (SELECT event_seq FROM evaluation_queue ORDER BY event_seq LIMIT $1)
                    RETURNING event_seq
                )
                SELECT e.body, e.received FROM events e JOIN taken ON e.seq = taken.event_seq ORDER BY e.seq
                """, [.int(limit)])
            return rows.compactMap { row in
                guard let body = try? row.value("body", as: String.self), var event = try? Event.decode(JSONValue.parse(body)) else { return nil }
                if let received = try? row.value("received", as: Int64.self) { event.received = Instant(microseconds: received) }
                return event
            }
        }

        func loadEngineState() throws -> (buckets: [Bucket], auxiliary: JSONValue?) {
            try PostgresStore.engineState(on: session)
        }

        func saveBuckets(_ changes: [(address: BucketAddress, bucket: Bucket?)]) throws {
            var saveTrigger: [String] = []
            var saveKey: [String] = []
            var saveBody: [String] = []
            var dropTrigger: [String] = []
            var dropKey: [String] = []
            for change in changes {
                let trigger = change.address.trigger.lowercasedText
                let key = JSONValue.array(change.address.key.map(JSONValue.string)).jsonText
                if let bucket = change.bucket {
                    saveTrigger.append(trigger)
                    saveKey.append(key)
                    saveBody.append(bucket.storageText)
                } else {
                    dropTrigger.append(trigger)
                    dropKey.append(key)
                }
            }
            if !dropTrigger.isEmpty {
                try session.execute(
                    """
                    DELETE FROM engine_buckets b USING unnest($1::text[], $2::text[]) AS d(trigger_id, bucket_key)
                    WHERE b.trigger_id = d.trigger_id AND b.bucket_key = d.bucket_key
                    """, [.texts(dropTrigger), .texts(dropKey)])
            }
            if !saveTrigger.isEmpty {
                // The last change of a bucket wins: the journal lists each address once.
                try session.execute(
                    """
                    INSERT INTO engine_buckets (trigger_id, bucket_key, body) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                    ON CONFLICT (trigger_id, bucket_key) DO UPDATE SET body = excluded.body
                    """, [.texts(saveTrigger), .texts(saveKey), .texts(saveBody)])
            }
        }

        func saveAuxiliaryState(_ state: JSONValue) throws {
            try session.execute(
                "INSERT INTO engine_state (name, body) VALUES ('auxiliary', $1) ON CONFLICT (name) DO UPDATE SET body = excluded.body",
                [.text(state.jsonText)])
        }

        func recordFiring(_ firing: Firing, actions: [Action], cooldown: TimeSpan?) throws {
            let id = firing.id.lowercasedText
            let automationID = firing.automationID.lowercasedText
            var suppressed = false
            if let cooldown, cooldown > .zero, !actions.isEmpty {
                let last = try session.execute(
                    "SELECT MAX(at) AS last FROM firings WHERE automation_id = $1 AND suppressed = 0 AND action_count > 0", [.text(automationID)]
                ).first.flatMap { try? $0.value("last", as: Int64?.self) }
                if let last, firing.at.microseconds - last < cooldown.microseconds { suppressed = true }
            }
            // One statement (one round trip): the firing, and its actions in the outbox only if the firing is new.
            try session.execute(
                """
                WITH fired AS (
                    INSERT INTO firings (id, automation_id, automation_name, trigger_id, triggering_event_id, at, labels, action_count, suppressed)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING RETURNING id
                )
                INSERT INTO outbox (id, firing_id, automation_id, action_index, action, available_at, created, status, updated)
                SELECT fired.id || '/' || (ord - 1), fired.id, $2, ord - 1, action, $10, $10, $11, $10
                FROM fired, unnest($12::text[]) WITH ORDINALITY AS a(action, ord)
                ON CONFLICT (id) DO NOTHING
                """,
                [
                    .text(id), .text(automationID), .text(firing.automationName), .text(firing.triggerID.lowercasedText),
                    .text(firing.triggeringEvent?.id.lowercasedText), .int(firing.at.microseconds),
                    .text(JSONValue.object(firing.bucketingLabels.mapValues(JSONValue.string)).jsonText), .int(actions.count), .int(suppressed ? 1 : 0),
                    .int(Instant.now.microseconds), .text(suppressed ? "suppressed" : "pending"), .texts(actions.map(\.jsonValue.jsonText)),
                ])
        }

        func finishOutbox(_ results: [OutboxResult]) throws {
            let now = Instant.now.microseconds
            for result in results {
                if let attempt = result.attempt {
                    try session.execute(
                        """
                        INSERT INTO delivery_attempts (outbox_id, attempt, started, duration_us, outcome, status_code, error)
                        VALUES ($1, $2, $3, $4, $5, $6, $7)
                        ON CONFLICT (outbox_id, attempt) DO UPDATE SET started = excluded.started, duration_us = excluded.duration_us,
                            outcome = excluded.outcome, status_code = excluded.status_code, error = excluded.error
                        """,
                        [
                            .text(result.entryID), .int(attempt.number), .int(attempt.started.microseconds), .int(attempt.duration.microseconds),
                            .text(attempt.outcome.rawValue), .int(attempt.statusCode), .text(attempt.error),
                        ])
                    try session.execute(
                        "UPDATE outbox SET attempts = GREATEST(attempts, $1), last_error = $2, updated = $3 WHERE id = $4",
                        [.int(attempt.number), .text(attempt.error), .int(now), .text(result.entryID)])
                }
                // Finishing ends the claim, whatever comes next — unless the lease ran out and another process claimed
                // the entry since: then that process decides (a delivery is still recorded as delivered).
                switch result.disposition {
                case .delivered:
                    try session.execute(
                        "UPDATE outbox SET status = 'delivered', updated = $1, claimed_by = NULL, lease_until = NULL WHERE id = $2",
                        [.int(now), .text(result.entryID)])
                case .retry(let at):
                    try session.execute(
                        """
                        UPDATE outbox SET status = 'pending', available_at = $1, updated = $2, claimed_by = NULL, lease_until = NULL
                        WHERE id = $3 AND (claimed_by IS NULL OR claimed_by = $4)
                        """, [.int(at.microseconds), .int(now), .text(result.entryID), .text(claimant)])
                case .deferred(let until):
                    try session.execute(
                        "UPDATE outbox SET available_at = $1, claimed_by = NULL, lease_until = NULL WHERE id = $2 AND (claimed_by IS NULL OR claimed_by = $3)",
                        [.int(until.microseconds), .text(result.entryID), .text(claimant)])
                case .dead(let reason):
                    try session.execute(
                        """
                        UPDATE outbox SET status = 'dead', last_error = $1, updated = $2, claimed_by = NULL, lease_until = NULL
                        WHERE id = $3 AND (claimed_by IS NULL OR claimed_by = $4)
                        """, [.text(reason), .int(now), .text(result.entryID), .text(claimant)])
                }
            }
        }
    }

    // MARK: - Leadership

    public func tryLead() async -> Bool {
        do {
            return try await leader.perform { session in
                let generation = session.generation.load(ordering: .relaxed)
                if let held = self.leadership.withLock({ $0 }), held == generation {
                    // Still the same connection: make sure it is alive (a dead one raises here and ends the leadership).
                    try session.execute("SELECT 1")
                    if session.generation.load(ordering: .relaxed) == held { return true }
                }
                self.leadership.withLock { $0 = nil }
                let rows = try session.execute("SELECT pg_try_advisory_lock($1) AS taken", [.int(Self.leaderLockKey)])
                guard try rows.first?.value("taken", as: Bool.self) == true else { return false }
                let now = session.generation.load(ordering: .relaxed)
                self.leadership.withLock { $0 = now }
                return true
            }
        } catch {
            leadership.withLock { $0 = nil }
            logger.warning("checking the evaluation leadership failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    public func writeAsLeader<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T {
        try await leader.perform { session in
            guard let held = self.leadership.withLock({ $0 }), held == session.generation.load(ordering: .relaxed) else {
                throw TriplineError(.io, "this process no longer leads the evaluation")
            }
            do {
                return try session.transaction {
                    // The transaction's connection must be the one holding the lock (a replaced one does not).
                    guard session.transactionGeneration == held else { throw TriplineError(.io, "the leadership was lost with its connection") }
                    let value = try body(Transaction(session: session, queueNewEvents: false, claimant: self.processName))
                    guard session.generation.load(ordering: .relaxed) == held else {
                        throw TriplineError(.io, "the leadership was lost during an evaluation")
                    }
                    return value
                }
            } catch {
                if session.generation.load(ordering: .relaxed) != held { self.leadership.withLock { $0 = nil } }
                throw error
            }
        }
    }

    public func resign() async {
        _ = try? await leader.perform { session in
            if self.leadership.withLock({ $0 }) != nil { try session.execute("SELECT pg_advisory_unlock($1)", [.int(Self.leaderLockKey)]) }
            self.leadership.withLock { $0 = nil }
        }
    }

    public func automationsVersion() async throws -> Int64 {
        try await api.perform { session in
            try session.execute("SELECT value FROM cluster_counters WHERE name = 'automations'").first?.value("value", as: Int64.self) ?? 0
        }
    }

    public func queuedEventCount() async throws -> Int {
        try await count(table: "evaluation_queue")
    }

    public func waitForQueuedEvents(timeout: Duration) async {
        startListening()
        await queuedSignal.wait(timeout: timeout)
    }

    /// Listens for the ingest transactions' notifications on a connection of its own (once), and turns them into
    /// wake-ups of ``waitForQueuedEvents(timeout:)``. When the connection fails it reconnects after a second; the
    /// evaluator polls in the meantime.
    private func startListening() {
        guard !listening.exchange(true, ordering: .relaxed) else { return }
        let endpoint = self.endpoint
        let logger = self.logger
        let signal = queuedSignal
        let task = Task.detached {
            while !Task.isCancelled {
                do {
                    let connection = try await PostgresConnection.connect(configuration: endpoint.connectionConfiguration, id: 0, logger: logger)
                    defer { Task { try? await connection.close() } }
                    try await connection.listen(on: Self.queueChannel) { notifications in
                        for try await _ in notifications { signal.signal() }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.debug("listening for queued events failed; retrying", metadata: ["error": "\(PostgresSession.describe(error))"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        background.withLock { $0.append(task) }
    }

    // MARK: - Reads

    public func forEachEvent(matching filter: EventFilter, _ visit: @escaping @Sendable (Event) -> Bool) async throws {
        try await api.perform { session in
            var conditions: [String] = []
            var values: [SQLValue] = []
            func parameter(_ value: SQLValue) -> String {
                values.append(value)
                return "$\(values.count)"
            }
            if let since = filter.since { conditions.append("occurred >= \(parameter(.int(since.microseconds)))") }
            if let until = filter.until { conditions.append("occurred <= \(parameter(.int(until.microseconds)))") }
            if let names = filter.names, !names.isEmpty { conditions.append("event = ANY(\(parameter(.texts(Array(names))))::text[])") }
            if let ids = filter.resource?.ids, !ids.isEmpty { conditions.append("resource_id = ANY(\(parameter(.texts(Array(ids))))::text[])") }
            if let prefixes = filter.namePrefixes, !prefixes.isEmpty {
                conditions.append("(" + prefixes.map { "starts_with(event, \(parameter(.text($0))))" }.joined(separator: " OR ") + ")")
            }
            for related in filter.related {
                guard let ids = related.ids, !ids.isEmpty else { continue }
                conditions.append("seq IN (SELECT event_seq FROM event_resources WHERE resource_id = ANY(\(parameter(.texts(Array(ids))))::text[]))")
            }
            for any in filter.anyResource {
                guard let ids = any.ids, !ids.isEmpty else { continue }
                let list = parameter(.texts(Array(ids)))
                conditions.append("(resource_id = ANY(\(list)::text[]) OR seq IN (SELECT event_seq FROM event_resources WHERE resource_id = ANY(\(list)::text[])))")
            }
            if let ids = filter.ids, !ids.isEmpty { conditions.append("id = ANY(\(parameter(.texts(ids.map { $0.lowercasedText })))::text[])") }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let order = filter.ascending ? "ASC" : "DESC"
            // Streamed; once `visit` has had enough, the remaining rows are only drained, not decoded.
            let stopped = Mutex(false)
            try session.stream("SELECT body, received FROM events \(whereClause) ORDER BY occurred \(order), seq \(order)", values) { row in
                guard !stopped.withLock({ $0 }) else { return }
                guard let body = try? row.value("body", as: String.self), var event = try? Event.decode(JSONValue.parse(body)) else { return }
                event.received = Instant(microseconds: try row.value("received", as: Int64.self))
                guard filter.matches(event) else { return }
                if !visit(event) { stopped.withLock { $0 = true } }
            }
        }
    }

    public func loadEngineState() async throws -> (buckets: [Bucket], auxiliary: JSONValue?) {
        try await api.perform { session in try Self.engineState(on: session) }
    }

    static func engineState(on session: PostgresSession) throws -> (buckets: [Bucket], auxiliary: JSONValue?) {
        let buckets = try session.execute("SELECT body FROM engine_buckets").map { row in
            try Bucket(json: JSONValue.parse(row.value("body", as: String.self)))
        }
        let auxiliary = try session.execute("SELECT body FROM engine_state WHERE name = 'auxiliary'").first.map { row in
            try JSONValue.parse(row.value("body", as: String.self))
        }
        return (buckets, auxiliary)
    }

    public func storedAutomations() async throws -> [StoredAutomation] {
        let rows: [(body: String, created: Int64, updated: Int64)] = try await api.perform { session in
            try session.execute("SELECT body, created, updated FROM automations ORDER BY created, id").map { row in
                let columns = ColumnReader(row)
                return (try columns.string("body"), try columns.int64("created"), try columns.int64("updated"))
            }
        }
        var result: [StoredAutomation] = []
        for row in rows {
            let loaded = Automation.load(text: row.body, file: "database")
            guard let automation = loaded.automations.first else {
                logger.error("a stored automation no longer loads", metadata: ["errors": "\(loaded.errors.map(\.description))"])
                continue
            }
            result.append(StoredAutomation(automation: automation, created: Instant(microseconds: row.created), updated: Instant(microseconds: row.updated)))
        }
        return result
    }

    public func saveAutomation(_ stored: StoredAutomation) async throws {
        try await api.performTransaction { session in
            try session.execute(
                """
                INSERT INTO automations (id, name, body, created, updated) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, body = excluded.body, created = excluded.created, updated = excluded.updated
                """,
                [
                    .text(stored.automation.id.lowercasedText), .text(stored.automation.name), .text(stored.automation.jsonValue.jsonText),
                    .int(stored.created.microseconds), .int(stored.updated.microseconds),
                ])
            try session.execute("UPDATE cluster_counters SET value = value + 1 WHERE name = 'automations'")
        }
    }

    public func deleteAutomation(id: UUID) async throws -> Bool {
        try await api.performTransaction { session in
            let deleted = try session.update("DELETE FROM automations WHERE id = $1", [.text(id.lowercasedText)])
            try session.execute("UPDATE cluster_counters SET value = value + 1 WHERE name = 'automations'")
            return deleted > 0
        }
    }

    public func recentFirings(limit: Int) async throws -> [FiringRecord] {
        try await api.perform { session in
            try session.execute(
                """
                SELECT f.id, f.automation_id, f.automation_name, f.trigger_id, f.at, f.labels, f.action_count,
                    e.body AS event_body, e.received AS event_received
                FROM firings f LEFT JOIN events e ON e.id = f.triggering_event_id ORDER BY f.at DESC LIMIT $1
                """, [.int(limit)]
            ).map { row in
                let columns = ColumnReader(row)
                let labels = (try? JSONValue.parse(columns.string("labels")))?.objectValue?.compactMapValues(\.stringValue) ?? [:]
                var event = (try columns.optionalString("event_body")).flatMap { try? Event.decode(JSONValue.parse($0)) }
                if let received = try row.value("event_received", as: Int64?.self) { event?.received = Instant(microseconds: received) }
                var firing = Firing(
                    automationID: UUID(text: try columns.string("automation_id")) ?? UUID(), automationName: try columns.string("automation_name"),
                    triggerID: UUID(text: try columns.string("trigger_id")) ?? UUID(), triggeringEvent: event,
                    at: Instant(microseconds: try columns.int64("at")), bucketingLabels: labels)
                firing.id = UUID(text: try columns.string("id")) ?? firing.id
                return FiringRecord(firing: firing, actionCount: try columns.int("action_count"))
            }
        }
    }

    public func deleteEvents(receivedBefore cutoff: Instant, limit: Int) async throws -> Int {
        try await api.perform { session in
            try session.update(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE received < $1 ORDER BY received LIMIT $2)",
                [.int(cutoff.microseconds), .int(limit)])
        }
    }

    /// Counts rows of a table, for tests and diagnostics.
    public func count(table: String) async throws -> Int {
        guard Self.countableTables.contains(table) else { return 0 }
        return try await api.perform { session in
            Int(try session.execute("SELECT COUNT(*) AS n FROM \(table)").first?.value("n", as: Int64.self) ?? 0)
        }
    }

    static let countableTables: Set<String> = [
        "events", "event_resources", "automations", "engine_buckets", "firings", "outbox", "delivery_attempts", "webhook_deliveries",
        "evaluation_queue", "flow_runs",
    ]
}

extension Instant {
    /// The current wall-clock time.
    static var now: Instant { Instant(seconds: Date().timeIntervalSince1970) }
}
