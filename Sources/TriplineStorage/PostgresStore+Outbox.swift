public import Foundation
internal import PostgresNIO
import Synchronization
public import TriplineCore

extension PostgresStore: Outbox {
    /// The database's clock in microseconds: leases are written and compared on one clock, so that processes on hosts
    /// whose clocks differ do not take each other's entries early.
    static let databaseNow = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

    /// Claims due entries that no live process holds: `FOR UPDATE SKIP LOCKED` keeps two dispatchers from taking the
    /// same row at the same moment, and the lease (renewed while the entry runs) hands an entry whose claimant died to
    /// another process once it ran out.
    public func claim(limit: Int, now: Instant) async throws -> [OutboxEntry] {
        let lease = configuration.leaseDuration
        let me = processName
        let entries = try await outboxSession.performTransaction { session in
            let rows = try session.execute(
                """
                WITH claimable AS (
                    SELECT id FROM outbox
                    WHERE status = 'pending' AND available_at <= $1 AND (lease_until IS NULL OR lease_until < \(Self.databaseNow))
                    ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED
                ), claimed AS (
                    UPDATE outbox o SET claimed_by = $3, lease_until = \(Self.databaseNow) + $4 FROM claimable WHERE o.id = claimable.id
                    RETURNING o.id, o.firing_id, o.automation_id, o.action_index, o.action, o.attempts, o.attempt_base, o.available_at
                )
                SELECT c.*, f.automation_name, f.labels, f.at, e.body AS event_body
                FROM claimed c JOIN firings f ON f.id = c.firing_id LEFT JOIN events e ON e.id = f.triggering_event_id
                ORDER BY c.available_at
                """, [.int(now.microseconds), .int(limit), .text(me), .int(lease.microseconds)])
            return try rows.map { row in
                let columns = ColumnReader(row)
                // A row that no longer decodes is still handed out (marked invalid), so that the dispatcher dead-letters
                // it instead of it staying pending for ever.
                let action = (try? JSONValue.parse(columns.string("action"))).map(SQLiteStore.action(from:)) ?? Action(type: "invalid-stored-action")
                let labels = (try? JSONValue.parse(columns.string("labels")))?.objectValue?.compactMapValues(\.stringValue) ?? [:]
                let event = (try columns.optionalString("event_body")).flatMap { try? Event.decode(JSONValue.parse($0)) }
                return OutboxEntry(
                    id: try columns.string("id"), firingID: UUID(text: try columns.string("firing_id")) ?? UUID(),
                    automationID: UUID(text: try columns.string("automation_id")) ?? UUID(), automationName: try columns.string("automation_name"),
                    actionIndex: try columns.int("action_index"), action: action, attempts: try columns.int("attempts"),
                    attemptBase: try columns.int("attempt_base"), triggeringEvent: event, bucketingLabels: labels,
                    firedAt: Instant(microseconds: try columns.int64("at")))
            }
        }
        let ids = entries.map(\.id)
        claimed.withLock { $0.formUnion(ids) }
        return entries
    }

    public func finish(_ results: [OutboxResult]) async throws {
        defer { releaseClaims(results.map(\.entryID)) }
        guard !results.isEmpty else { return }
        let me = processName
        try await outboxSession.performTransaction { session in try Transaction(session: session, queueNewEvents: true, claimant: me).finishOutbox(results) }
    }

    /// Stops renewing the leases of finished entries (their rows were released when the results were recorded).
    public func releaseClaims(_ ids: [String]) {
        claimed.withLock { claimed in
            for id in ids { claimed.remove(id) }
        }
    }

    /// The earliest time a pending entry is due and free: its `available_at`, or its lease's end when another process
    /// holds it.
    public func nextDue() async throws -> Instant? {
        let me = processName
        return try await outboxSession.perform { session in
            try session.execute(
                """
                SELECT MIN(GREATEST(available_at, COALESCE(lease_until, 0))) AS due FROM outbox
                WHERE status = 'pending' AND (claimed_by IS NULL OR claimed_by <> $1 OR lease_until IS NULL)
                """, [.text(me)]
            ).first.flatMap { try $0.value("due", as: Int64?.self) }.map(Instant.init(microseconds:))
        }
    }

    /// Renews the leases of the entries this process is running, every third of the lease, so that a long action is
    /// not taken over while it runs; a process that dies stops renewing and its entries fall due after the lease.
    func startLeaseRenewal() {
        let period = Duration.microseconds(max(configuration.leaseDuration.microseconds / 3, 100_000))
        let task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                guard let self else { return }
                let ids = Array(self.claimed.withLock { $0 })
                guard !ids.isEmpty else { continue }
                let lease = self.configuration.leaseDuration.microseconds
                let me = self.processName
                do {
                    _ = try await self.outboxSession.perform { session in
                        try session.update(
                            "UPDATE outbox SET lease_until = \(Self.databaseNow) + $1 WHERE claimed_by = $2 AND id = ANY($3::text[]) AND status = 'pending'",
                            [.int(lease), .text(me), .texts(ids)])
                    }
                } catch {
                    self.logger.warning("renewing outbox leases failed", metadata: ["error": "\(error)"])
                }
            }
        }
        background.withLock { $0.append(task) }
    }
}

extension PostgresStore: DeliveryLog {
    public func deliveries(automation: UUID?, status: DeliveryStatus?, limit: Int) async throws -> [Delivery] {
        try await api.perform { session in
            var conditions: [String] = []
            var values: [SQLValue] = []
            if let automation {
                values.append(.text(automation.lowercasedText))
                conditions.append("o.automation_id = $\(values.count)")
            }
            if let status {
                values.append(.text(status.rawValue))
                conditions.append("o.status = $\(values.count)")
            }
            values.append(.int(limit))
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try session.execute(
                """
                SELECT o.*, f.automation_name FROM outbox o JOIN firings f ON f.id = o.firing_id \(whereClause)
                ORDER BY o.created DESC, o.id LIMIT $\(values.count)
                """, values
            ).map(Self.delivery(from:))
        }
    }

    public func delivery(id: String) async throws -> Delivery? {
        try await api.perform { session in
            guard
                let row = try session.execute(
                    "SELECT o.*, f.automation_name FROM outbox o JOIN firings f ON f.id = o.firing_id WHERE o.id = $1", [.text(id)]
                ).first
            else { return nil }
            var delivery = try Self.delivery(from: row)
            delivery.attempts = try session.execute("SELECT * FROM delivery_attempts WHERE outbox_id = $1 ORDER BY attempt", [.text(id)]).map { row in
                let columns = ColumnReader(row)
                return DeliveryAttempt(
                    number: try columns.int("attempt"), started: Instant(microseconds: try columns.int64("started")),
                    duration: TimeSpan(microseconds: try columns.int64("duration_us")),
                    outcome: DeliveryAttempt.Outcome(rawValue: try columns.string("outcome")) ?? .failure, statusCode: try columns.optionalInt("status_code"),
                    error: try columns.optionalString("error"))
            }
            return delivery
        }
    }

    public func redrive(id: String, now: Instant) async throws -> Bool {
        try await api.perform { session in
            try session.update(
                """
                UPDATE outbox SET status = 'pending', available_at = $1, attempt_base = attempts, updated = $1, claimed_by = NULL, lease_until = NULL
                WHERE id = $2 AND status IN ('dead', 'suppressed')
                """, [.int(now.microseconds), .text(id)]) > 0
        }
    }

    static func delivery(from row: PostgresRow) throws -> Delivery {
        let columns = ColumnReader(row)
        let action = (try? JSONValue.parse(columns.string("action"))) ?? .null
        return Delivery(
            id: try columns.string("id"), firingID: UUID(text: try columns.string("firing_id")) ?? UUID(),
            automationID: UUID(text: try columns.string("automation_id")) ?? UUID(), automationName: try columns.string("automation_name"),
            actionIndex: try columns.int("action_index"), actionType: action["type"]?.stringValue ?? "unknown",
            status: DeliveryStatus(rawValue: try columns.string("status")) ?? .pending, attemptCount: try columns.int("attempts"),
            availableAt: Instant(microseconds: try columns.int64("available_at")), created: Instant(microseconds: try columns.int64("created")),
            lastError: try columns.optionalString("last_error"))
    }
}

extension PostgresStore: WebhookDeliveryLog {
    public func recordDeliveries(_ deliveries: [WebhookDelivery]) async throws {
        guard !deliveries.isEmpty else { return }
        try await api.performTransaction { session in
            for delivery in deliveries {
                let ids = JSONValue.array(delivery.eventIDs.map { .string($0.lowercasedText) }).jsonText
                try session.execute(
                    """
                    INSERT INTO webhook_deliveries (slug, received, method, status, outcome, code, reason, event_ids, duplicates, latency_us, size,
                        content_type, request_id, body)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                    """,
                    [
                        .text(delivery.slug), .int(delivery.received.microseconds), .text(delivery.method), .int(delivery.status),
                        .text(delivery.outcome), .text(delivery.code), .text(delivery.reason), .text(ids), .int(delivery.duplicates),
                        .int(delivery.latencyMicroseconds), .int(delivery.size), .text(delivery.contentType), .text(delivery.requestID),
                        .bytes(delivery.body.map { Data($0) }),
                    ])
            }
        }
    }

    public func deliveries(slug: String, outcome: String?, before: Int64?, limit: Int) async throws -> [WebhookDelivery] {
        try await api.perform { session in
            var sql = "SELECT * FROM webhook_deliveries WHERE slug = $1"
            var values: [SQLValue] = [.text(slug)]
            if let outcome {
                values.append(.text(outcome))
                sql += " AND outcome = $\(values.count)"
            }
            if let before {
                values.append(.int(before))
                sql += " AND id < $\(values.count)"
            }
            values.append(.int(limit))
            sql += " ORDER BY id DESC LIMIT $\(values.count)"
            return try session.execute(sql, values).map(Self.webhookDelivery)
        }
    }

    public func delivery(id: Int64) async throws -> WebhookDelivery? {
        try await api.perform { session in
            try session.execute("SELECT * FROM webhook_deliveries WHERE id = $1", [.int(id)]).first.map(Self.webhookDelivery)
        }
    }

    public func deleteDeliveries(receivedBefore cutoff: Instant, limit: Int) async throws -> Int {
        try await api.perform { session in
            try session.update(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE received < $1 ORDER BY received LIMIT $2)",
                [.int(cutoff.microseconds), .int(limit)])
        }
    }

    static func webhookDelivery(_ row: PostgresRow) throws -> WebhookDelivery {
        let columns = ColumnReader(row)
        let ids = ((try? JSONValue.parse(columns.string("event_ids")))?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(UUID.init(uuidString:)) }
        return WebhookDelivery(
            id: try columns.int64("id"), slug: try columns.string("slug"), received: Instant(microseconds: try columns.int64("received")),
            method: try columns.string("method"), status: try columns.int("status"), outcome: try columns.string("outcome"),
            code: try columns.optionalString("code"), reason: try columns.optionalString("reason"), eventIDs: ids,
            duplicates: try columns.int("duplicates"), latencyMicroseconds: try columns.int64("latency_us"), size: try columns.int("size"),
            contentType: try columns.optionalString("content_type"), requestID: try columns.optionalString("request_id"),
            body: (try columns.data("body")).map { [UInt8]($0) })
    }
}
