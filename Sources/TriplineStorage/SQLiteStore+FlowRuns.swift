public import Foundation
internal import GRDB
public import TriplineCore

extension SQLiteStore: FlowRunStore {
    static func registerFlowRunMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("2026-11-23-flow-runs") { db in
            // The local runner's flow runs; a repeated idempotency key finds the run created before.
            try db.execute(
                sql: """
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
                        state_timestamp INTEGER NOT NULL,
                        transitions INTEGER NOT NULL,
                        created INTEGER NOT NULL,
                        started INTEGER,
                        ended INTEGER,
                        exit_code INTEGER,
                        pid INTEGER,
                        created_by TEXT,
                        log_path TEXT NOT NULL
                    );
                    CREATE INDEX flow_runs_created ON flow_runs(created);
                    CREATE INDEX flow_runs_deployment ON flow_runs(deployment_id, created);
                    CREATE INDEX flow_runs_state ON flow_runs(state_type, created);
                    """)
        }
    }

    public func createFlowRun(_ run: FlowRun) async throws -> (run: FlowRun, created: Bool) {
        try await pool.write { db in
            if let key = run.idempotencyKey,
                let existing = try Row.fetchOne(db, sql: "SELECT * FROM flow_runs WHERE idempotency_key = ?", arguments: [key]).map(Self.flowRun)
            {
                return (existing, false)
            }
            try db.execute(
                sql: """
                    INSERT INTO flow_runs (id, name, deployment_id, deployment_name, flow_id, flow_name, parameters, idempotency_key, state_type,
                        state_name, state_message, state_timestamp, transitions, created, started, ended, exit_code, pid, created_by, log_path)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    run.id.lowercasedText, run.name, run.deploymentID.lowercasedText, run.deploymentName,
                    run.flowID.lowercasedText, run.flowName, run.parameters.jsonText, run.idempotencyKey, run.state.type.rawValue,
                    run.state.name, run.state.message, run.state.timestamp.microseconds, run.transitions, run.created.microseconds,
                    run.started?.microseconds, run.ended?.microseconds, run.exitCode, run.pid, run.createdBy, run.logPath,
                ])
            return (run, true)
        }
    }

    public func saveFlowRun(_ run: FlowRun) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE flow_runs SET state_type = ?, state_name = ?, state_message = ?, state_timestamp = ?, transitions = ?, started = ?,
                        ended = ?, exit_code = ?, pid = ? WHERE id = ?
                    """,
                arguments: [
                    run.state.type.rawValue, run.state.name, run.state.message, run.state.timestamp.microseconds, run.transitions,
                    run.started?.microseconds, run.ended?.microseconds, run.exitCode, run.pid, run.id.lowercasedText,
                ])
        }
    }

    public func flowRun(id: UUID) async throws -> FlowRun? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM flow_runs WHERE id = ?", arguments: [id.lowercasedText]).map(Self.flowRun)
        }
    }

    public func flowRuns(deploymentID: UUID?, stateTypes: [FlowRun.StateType]?, limit: Int, oldestFirst: Bool) async throws -> [FlowRun] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let deploymentID {
                conditions.append("deployment_id = ?")
                arguments += [deploymentID.lowercasedText]
            }
            if let stateTypes, !stateTypes.isEmpty {
                conditions.append("state_type IN (\(Array(repeating: "?", count: stateTypes.count).joined(separator: ",")))")
                for type in stateTypes { arguments += [type.rawValue] }
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let order = oldestFirst ? "ASC" : "DESC"
            arguments += [limit]
            return try Row.fetchAll(
                db, sql: "SELECT * FROM flow_runs \(whereClause) ORDER BY created \(order), rowid \(order) LIMIT ?", arguments: arguments
            )
            .map(Self.flowRun)
        }
    }

    static func flowRun(_ row: Row) -> FlowRun {
        let state = FlowRun.State(
            FlowRun.StateType(rawValue: row["state_type"]) ?? .crashed, name: row["state_name"], message: row["state_message"],
            at: Instant(microseconds: row["state_timestamp"]))
        return FlowRun(
            id: UUID(text: row["id"]) ?? UUID(), name: row["name"], deploymentID: UUID(text: row["deployment_id"]) ?? UUID(),
            deploymentName: row["deployment_name"], flowID: UUID(text: row["flow_id"]) ?? UUID(), flowName: row["flow_name"],
            parameters: (try? JSONValue.parse(row["parameters"] as String)) ?? .object([:]), idempotencyKey: row["idempotency_key"], state: state,
            transitions: row["transitions"], created: Instant(microseconds: row["created"]),
            started: (row["started"] as Int64?).map(Instant.init(microseconds:)),
            ended: (row["ended"] as Int64?).map(Instant.init(microseconds:)), exitCode: row["exit_code"], pid: row["pid"],
            createdBy: row["created_by"],
            logPath: row["log_path"])
    }
}
