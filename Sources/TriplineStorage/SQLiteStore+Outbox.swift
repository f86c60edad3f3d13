public import Foundation
import Synchronization
internal import GRDB
public import TriplineCore

extension SQLiteStore: Outbox {
    public func claim(limit: Int, now: Instant) async throws -> [OutboxEntry] {
        let skip = claimed.withLock { $0 }
        // The rows are decoded inside the read: a closure returning Sendable values gets GRDB's async read (on its
        // own queue); one returning rows would get the blocking one, on the cooperative pool.
        let entries: [OutboxEntry] = try await pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT o.id, o.firing_id, o.automation_id, o.action_index, o.action, o.attempts, o.attempt_base,
                        f.automation_name, f.labels, f.at, e.body AS event_body
                    FROM outbox o JOIN firings f ON f.id = o.firing_id LEFT JOIN events e ON e.id = f.triggering_event_id
                    WHERE o.status = 'pending' AND o.available_at <= ?
                    ORDER BY o.available_at LIMIT ?
                    """, arguments: [now.microseconds, limit + skip.count])
            var entries: [OutboxEntry] = []
            for row in rows {
                let id: String = row["id"]
                if skip.contains(id) { continue }
                guard entries.count < limit else { break }
                // A row that no longer decodes is still handed out (with a do-nothing placeholder marked invalid), so
                // that the dispatcher dead-letters it instead of it staying pending for ever.
                let action = (try? JSONValue.parse(row["action"] as String)).map(Self.action(from:)) ?? Action(type: "invalid-stored-action")
                let labels = (try? JSONValue.parse(row["labels"] as String))?.objectValue?.compactMapValues(\.stringValue) ?? [:]
                let event = (row["event_body"] as String?).flatMap { try? Event.decode(JSONValue.parse($0)) }
                entries.append(
                    OutboxEntry(
                        id: id, firingID: UUID(text: row["firing_id"]) ?? UUID(), automationID: UUID(text: row["automation_id"]) ?? UUID(),
                        automationName: row["automation_name"], actionIndex: row["action_index"], action: action, attempts: row["attempts"],
                        attemptBase: row["attempt_base"], triggeringEvent: event, bucketingLabels: labels, firedAt: Instant(microseconds: row["at"])))
            }
            return entries
        }
        let ids = entries.map(\.id)
        claimed.withLock { $0.formUnion(ids) }
        return entries
    }

    static func action(from json: JSONValue) -> Action {
        var fields = json.objectValue ?? [:]
        let type = fields.removeValue(forKey: "type")?.stringValue ?? "invalid-stored-action"
        return Action(type: type, fields: fields)
    }

    public func finish(_ results: [OutboxResult]) async throws {
        defer {
            claimed.withLock { claimed in
                for result in results { claimed.remove(result.entryID) }
            }
        }
        guard !results.isEmpty else { return }
        try await pool.write { db in try Transaction(db: db).finishOutbox(results) }
    }

    /// Releases the claims of finished entries, once their results are durable (see ``OutboxRecorder``).
    public func releaseClaims(_ ids: [String]) {
        claimed.withLock { claimed in
            for id in ids { claimed.remove(id) }
        }
    }

    public func nextDue() async throws -> Instant? {
        let skip = claimed.withLock { $0 }
        return try await pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, available_at FROM outbox WHERE status = 'pending' ORDER BY available_at LIMIT ?", arguments: [skip.count + 1])
            for row in rows where !skip.contains(row["id"] as String) { return Instant(microseconds: row["available_at"]) }
            return nil
        }
    }
}

extension SQLiteStore: DeliveryLog {
    public func deliveries(automation: UUID?, status: DeliveryStatus?, limit: Int) async throws -> [Delivery] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: [any DatabaseValueConvertible] = []
            if let automation {
                conditions.append("o.automation_id = ?")
                arguments.append(automation.lowercasedText)
            }
            if let status {
                conditions.append("o.status = ?")
                arguments.append(status.rawValue)
            }
            arguments.append(limit)
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Row.fetchAll(
                db,
                sql: """
                    SELECT o.*, f.automation_name FROM outbox o JOIN firings f ON f.id = o.firing_id \(whereClause)
                    ORDER BY o.created DESC, o.id LIMIT ?
                    """, arguments: StatementArguments(arguments)
            ).map(Self.delivery(from:))
        }
    }

    public func delivery(id: String) async throws -> Delivery? {
        try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT o.*, f.automation_name FROM outbox o JOIN firings f ON f.id = o.firing_id WHERE o.id = ?", arguments: [id])
            else { return nil }
            var delivery = Self.delivery(from: row)
            delivery.attempts = try Row.fetchAll(
                db, sql: "SELECT * FROM delivery_attempts WHERE outbox_id = ? ORDER BY attempt", arguments: [id]
            ).map { row in
                DeliveryAttempt(
                    number: row["attempt"], started: Instant(microseconds: row["started"]), duration: TimeSpan(microseconds: row["duration_us"]),
                    outcome: DeliveryAttempt.Outcome(rawValue: row["outcome"]) ?? .failure, statusCode: row["status_code"], error: row["error"])
            }
            return delivery
        }
    }

    public func redrive(id: String, now: Instant) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE outbox SET status = 'pending', available_at = ?, attempt_base = attempts, updated = ?
                    WHERE id = ? AND status IN ('dead', 'suppressed')
                    """, arguments: [now.microseconds, now.microseconds, id])
            return db.changesCount > 0
        }
    }

    static func delivery(from row: Row) -> Delivery {
        let action = (try? JSONValue.parse(row["action"] as String)) ?? .null
        return Delivery(
            id: row["id"], firingID: UUID(text: row["firing_id"]) ?? UUID(), automationID: UUID(text: row["automation_id"]) ?? UUID(),
            automationName: row["automation_name"], actionIndex: row["action_index"], actionType: action["type"]?.stringValue ?? "unknown",
            status: DeliveryStatus(rawValue: row["status"]) ?? .pending, attemptCount: row["attempts"],
            availableAt: Instant(microseconds: row["available_at"]), created: Instant(microseconds: row["created"]), lastError: row["last_error"])
    }
}

extension SQLiteStore.Transaction {
    func finishOutbox(_ results: [OutboxResult]) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        for result in results {
            if let attempt = result.attempt {
                try db.cachedStatement(
                    sql: """
                        INSERT OR REPLACE INTO delivery_attempts (outbox_id, attempt, started, duration_us, outcome, status_code, error)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(
                    arguments: [
                        result.entryID, attempt.number, attempt.started.microseconds, attempt.duration.microseconds, attempt.outcome.rawValue,
                        attempt.statusCode, attempt.error,
                    ])
                try db.cachedStatement(sql: "UPDATE outbox SET attempts = MAX(attempts, ?), last_error = ?, updated = ? WHERE id = ?")
                    .execute(arguments: [attempt.number, attempt.error, now, result.entryID])
            }
            switch result.disposition {
            case .delivered:
                try db.cachedStatement(sql: "UPDATE outbox SET status = 'delivered', updated = ? WHERE id = ?").execute(arguments: [now, result.entryID])
            case .retry(let at):
                try db.cachedStatement(sql: "UPDATE outbox SET status = 'pending', available_at = ?, updated = ? WHERE id = ?")
                    .execute(arguments: [at.microseconds, now, result.entryID])
            case .deferred(let until):
                try db.cachedStatement(sql: "UPDATE outbox SET available_at = ? WHERE id = ?").execute(arguments: [until.microseconds, result.entryID])
            case .dead(let reason):
                try db.cachedStatement(sql: "UPDATE outbox SET status = 'dead', last_error = ?, updated = ? WHERE id = ?")
                    .execute(arguments: [reason, now, result.entryID])
            }
        }
    }
}
