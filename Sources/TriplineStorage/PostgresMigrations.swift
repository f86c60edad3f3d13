internal import Foundation
internal import Logging
internal import PostgresNIO
internal import TriplineCore

/// The PostgreSQL schema as named, append-only migrations, recorded in `tripline_migrations`. Processes that start
/// together apply them one at a time (an advisory lock serializes them); each migration commits with its record.
/// A released migration is never edited: a change is a new migration at the end.
enum PostgresMigrations {
    struct Migration {
        let name: String
        let statements: [String]
    }

    static let all: [Migration] = [
        Migration(
            name: "2026-11-23-initial",
            statements: [
                """
                CREATE TABLE events (
                    seq BIGSERIAL PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    occurred BIGINT NOT NULL,
                    received BIGINT NOT NULL,
                    event TEXT NOT NULL,
                    resource_id TEXT NOT NULL,
                    body TEXT NOT NULL
                )
                """,
                "CREATE INDEX events_occurred ON events(occurred)",
                "CREATE INDEX events_event ON events(event, occurred)",
                "CREATE INDEX events_resource ON events(resource_id, occurred)",
                "CREATE INDEX events_received ON events(received)",
                """
                CREATE TABLE event_resources (
                    event_seq BIGINT NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
                    role TEXT NOT NULL,
                    resource_id TEXT NOT NULL
                )
                """,
                "CREATE INDEX event_resources_resource ON event_resources(resource_id, role)",
                "CREATE INDEX event_resources_event ON event_resources(event_seq)",
                // Every stored event waits here until the leader evaluated it (in the transaction that deletes it).
                "CREATE TABLE evaluation_queue (event_seq BIGINT PRIMARY KEY REFERENCES events(seq) ON DELETE CASCADE)",
                """
                CREATE TABLE automations (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created BIGINT NOT NULL,
                    updated BIGINT NOT NULL
                )
                """,
                // Counters other processes poll to notice changes (the API automations' version).
                "CREATE TABLE cluster_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO cluster_counters (name, value) VALUES ('automations', 0)",
                """
                CREATE TABLE engine_buckets (
                    trigger_id TEXT NOT NULL,
                    bucket_key TEXT NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (trigger_id, bucket_key)
                )
                """,
                "CREATE TABLE engine_state (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
                """
                CREATE TABLE firings (
                    id TEXT PRIMARY KEY,
                    automation_id TEXT NOT NULL,
                    automation_name TEXT NOT NULL,
                    trigger_id TEXT NOT NULL,
                    triggering_event_id TEXT,
                    at BIGINT NOT NULL,
                    labels TEXT NOT NULL,
                    action_count BIGINT NOT NULL,
                    suppressed BIGINT NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX firings_at ON firings(at)",
                "CREATE INDEX firings_automation ON firings(automation_id, suppressed, at)",
                """
                CREATE TABLE outbox (
                    id TEXT PRIMARY KEY,
                    firing_id TEXT NOT NULL REFERENCES firings(id),
                    automation_id TEXT NOT NULL,
                    action_index BIGINT NOT NULL,
                    action TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'pending',
                    attempts BIGINT NOT NULL DEFAULT 0,
                    attempt_base BIGINT NOT NULL DEFAULT 0,
                    available_at BIGINT NOT NULL,
                    created BIGINT NOT NULL,
                    updated BIGINT,
                    last_error TEXT,
                    claimed_by TEXT,
                    lease_until BIGINT
                )
                """,
                "CREATE INDEX outbox_pending ON outbox(status, available_at)",
                "CREATE INDEX outbox_automation ON outbox(automation_id, created)",
                "CREATE INDEX outbox_created ON outbox(created)",
                """
                CREATE TABLE delivery_attempts (
                    outbox_id TEXT NOT NULL REFERENCES outbox(id),
                    attempt BIGINT NOT NULL,
                    started BIGINT NOT NULL,
                    duration_us BIGINT NOT NULL,
                    outcome TEXT NOT NULL,
                    status_code BIGINT,
                    error TEXT,
                    PRIMARY KEY (outbox_id, attempt)
                )
                """,
                """
                CREATE TABLE webhook_deliveries (
                    id BIGSERIAL PRIMARY KEY,
                    slug TEXT NOT NULL,
                    received BIGINT NOT NULL,
                    method TEXT NOT NULL,
                    status BIGINT NOT NULL,
                    outcome TEXT NOT NULL,
                    code TEXT,
                    reason TEXT,
                    event_ids TEXT NOT NULL,
                    duplicates BIGINT NOT NULL,
                    latency_us BIGINT NOT NULL,
                    size BIGINT NOT NULL,
                    content_type TEXT,
                    request_id TEXT,
                    body BYTEA
                )
                """,
                "CREATE INDEX webhook_deliveries_slug ON webhook_deliveries(slug, id)",
                "CREATE INDEX webhook_deliveries_received ON webhook_deliveries(received)",
            ]),
        Migration(
            name: "2026-11-23-flow-runs",
            statements: [
                // The local runner's flow runs; `runner` is the process whose runner starts and watches the run.
                """
                CREATE TABLE flow_runs (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    deployment_id TEXT NOT NULL,
                    deployment_name TEXT NOT NULL,
                    flow_id TEXT NOT NULL,
                    flow_name TEXT NOT NULL,
                    parameters TEXT NOT NULL,
                    idempotency_key TEXT UNIQUE,
                    state_type TEXT NOT NULL,
                    state_name TEXT NOT NULL,
                    state_message TEXT,
                    state_timestamp BIGINT NOT NULL,
                    transitions BIGINT NOT NULL,
                    created BIGINT NOT NULL,
                    started BIGINT,
                    ended BIGINT,
                    exit_code BIGINT,
                    pid BIGINT,
                    created_by TEXT,
                    log_path TEXT NOT NULL,
                    runner TEXT NOT NULL,
                    seq BIGSERIAL
                )
                """,
                "CREATE INDEX flow_runs_created ON flow_runs(created)",
                "CREATE INDEX flow_runs_deployment ON flow_runs(deployment_id, created)",
                "CREATE INDEX flow_runs_state ON flow_runs(state_type, created)",
                "CREATE INDEX flow_runs_runner ON flow_runs(runner, state_type)",
            ]),
    ]

    static let createLedger = "CREATE TABLE IF NOT EXISTS tripline_migrations (name TEXT PRIMARY KEY, applied BIGINT NOT NULL)"

    /// Applies every migration the database has not recorded, in order; returns their names.
    static func apply(on session: PostgresSession, logger: Logger) throws -> [String] {
        try session.execute("SELECT pg_advisory_lock($1)", [.int(PostgresStore.migrationLockKey)])
        defer { _ = try? session.execute("SELECT pg_advisory_unlock($1)", [.int(PostgresStore.migrationLockKey)]) }
        try session.execute(createLedger)
        let done = try recorded(on: session)
        var applied: [String] = []
        for migration in all where !done.contains(migration.name) {
            do {
                try session.transaction {
                    for statement in migration.statements { try session.execute(statement) }
                    try session.execute(
                        "INSERT INTO tripline_migrations (name, applied) VALUES ($1, $2)", [.text(migration.name), .int(Instant.now.microseconds)])
                }
            } catch {
                throw TriplineError(.io, "migration \(migration.name) failed: \(error)")
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
            applied.append(migration.name)
        }
        return applied
    }

    /// The migrations the database has not recorded.
    static func pending(on session: PostgresSession) throws -> [String] {
        let exists = try session.execute("SELECT to_regclass('tripline_migrations') IS NOT NULL AS present").first?.value("present", as: Bool.self) ?? false
        let done = exists ? try recorded(on: session) : []
        return all.map(\.name).filter { !done.contains($0) }
    }

    static func recorded(on session: PostgresSession) throws -> Set<String> {
        Set(try session.execute("SELECT name FROM tripline_migrations").map { try $0.value("name", as: String.self) })
    }
}
