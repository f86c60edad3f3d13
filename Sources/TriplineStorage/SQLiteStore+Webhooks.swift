internal import Foundation
internal import GRDB
public import TriplineCore

extension SQLiteStore: WebhookDeliveryLog {
    static func registerWebhookMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("2026-11-23-webhook-deliveries") { db in
            try db.execute(
                sql: """
                    CREATE TABLE webhook_deliveries (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        slug TEXT NOT NULL,
                        received INTEGER NOT NULL,
                        method TEXT NOT NULL,
                        status INTEGER NOT NULL,
                        outcome TEXT NOT NULL,
                        code TEXT,
                        reason TEXT,
                        event_ids TEXT NOT NULL,
                        duplicates INTEGER NOT NULL,
                        latency_us INTEGER NOT NULL,
                        size INTEGER NOT NULL,
                        content_type TEXT,
                        request_id TEXT,
                        body BLOB
                    );
                    CREATE INDEX webhook_deliveries_slug ON webhook_deliveries(slug, id);
                    CREATE INDEX webhook_deliveries_received ON webhook_deliveries(received);
                    """)
        }
        migrator.registerMigration("2026-11-23-events-received") { db in
            // Retention deletes by the time an event was received.
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS events_received ON events(received)")
        }
    }

    public func recordDeliveries(_ deliveries: [WebhookDelivery]) async throws {
        guard !deliveries.isEmpty else { return }
        try await pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO webhook_deliveries (slug, received, method, status, outcome, code, reason, event_ids, duplicates, latency_us, size,
                        content_type, request_id, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for delivery in deliveries {
                let ids = JSONValue.array(delivery.eventIDs.map { .string($0.lowercasedText) }).jsonText
                try statement.execute(arguments: [
                    delivery.slug, delivery.received.microseconds, delivery.method, delivery.status, delivery.outcome, delivery.code, delivery.reason, ids,
                    delivery.duplicates, delivery.latencyMicroseconds, delivery.size, delivery.contentType, delivery.requestID,
                    delivery.body.map { Data($0) },
                ])
            }
        }
    }

    public func deliveries(slug: String, outcome: String?, before: Int64?, limit: Int) async throws -> [WebhookDelivery] {
        try await pool.read { db in
            var sql = "SELECT * FROM webhook_deliveries WHERE slug = ?"
            var arguments: StatementArguments = [slug]
            if let outcome {
                sql += " AND outcome = ?"
                arguments += [outcome]
            }
            if let before {
                sql += " AND id < ?"
                arguments += [before]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.delivery)
        }
    }

    public func delivery(id: Int64) async throws -> WebhookDelivery? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM webhook_deliveries WHERE id = ?", arguments: [id]).map(Self.delivery)
        }
    }

    public func deleteDeliveries(receivedBefore cutoff: Instant, limit: Int) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE received < ? ORDER BY received LIMIT ?)",
                arguments: [cutoff.microseconds, limit])
            return db.changesCount
        }
    }

    static func delivery(_ row: Row) -> WebhookDelivery {
        let ids = ((try? JSONValue.parse(row["event_ids"] as String))?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(UUID.init(uuidString:)) }
        return WebhookDelivery(
            id: row["id"], slug: row["slug"], received: Instant(microseconds: row["received"]), method: row["method"], status: row["status"],
            outcome: row["outcome"], code: row["code"], reason: row["reason"], eventIDs: ids, duplicates: row["duplicates"],
            latencyMicroseconds: row["latency_us"], size: row["size"], contentType: row["content_type"], requestID: row["request_id"],
            body: (row["body"] as Data?).map { [UInt8]($0) })
    }
}
