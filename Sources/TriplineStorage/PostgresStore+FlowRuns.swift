public import Foundation
internal import PostgresNIO
public import TriplineCore

extension PostgresStore: FlowRunStore {
    public func createFlowRun(_ run: FlowRun) async throws -> (run: FlowRun, created: Bool) {
        let me = processName
        return try await api.performTransaction { session in
            // The idempotency key is unique: a concurrent second attempt waits for the first and then finds its run.
            let inserted = try session.update(
                """
                INSERT INTO flow_runs (id, name, deployment_id, deployment_name, flow_id, flow_name, parameters, idempotency_key, state_type,
                    state_name, state_message, state_timestamp, transitions, created, started, ended, exit_code, pid, created_by, log_path, runner)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
                ON CONFLICT DO NOTHING
                """,
                [
                    .text(run.id.lowercasedText), .text(run.name), .text(run.deploymentID.lowercasedText), .text(run.deploymentName),
                    .text(run.flowID.lowercasedText), .text(run.flowName), .text(run.parameters.jsonText), .text(run.idempotencyKey),
                    .text(run.state.type.rawValue), .text(run.state.name), .text(run.state.message), .int(run.state.timestamp.microseconds),
                    .int(run.transitions), .int(run.created.microseconds), .int(run.started?.microseconds), .int(run.ended?.microseconds),
                    .int(run.exitCode), .int(run.pid), .text(run.createdBy), .text(run.logPath), .text(me),
                ])
            if inserted > 0 { return (run, true) }
            let existing = try session.execute(
                "SELECT * FROM flow_runs WHERE idempotency_key = $1 OR id = $2 LIMIT 1", [.text(run.idempotencyKey), .text(run.id.lowercasedText)]
            ).first
            guard let existing else { throw TriplineError(.io, "flow run \(run.id.lowercasedText) was neither stored nor found") }
            return (try Self.flowRun(existing), false)
        }
    }

    public func saveFlowRun(_ run: FlowRun) async throws {
        try await api.perform { session in
            _ = try session.update(
                """
                UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3, state_timestamp = $4, transitions = $5, started = $6,
                    ended = $7, exit_code = $8, pid = $9 WHERE id = $10
                """,
                [
                    .text(run.state.type.rawValue), .text(run.state.name), .text(run.state.message), .int(run.state.timestamp.microseconds),
                    .int(run.transitions), .int(run.started?.microseconds), .int(run.ended?.microseconds), .int(run.exitCode), .int(run.pid),
                    .text(run.id.lowercasedText),
                ])
        }
    }

    public func flowRun(id: UUID) async throws -> FlowRun? {
        try await api.perform { session in
            try session.execute("SELECT * FROM flow_runs WHERE id = $1", [.text(id.lowercasedText)]).first.map(Self.flowRun)
        }
    }

    public func flowRuns(deploymentID: UUID?, stateTypes: [FlowRun.StateType]?, limit: Int, oldestFirst: Bool) async throws -> [FlowRun] {
        try await selectFlowRuns(deploymentID: deploymentID, stateTypes: stateTypes, runner: nil, limit: limit, oldestFirst: oldestFirst)
    }

    /// The runs this process created: each process's runner starts and watches its own runs, so that two processes
    /// never start the same run.
    public func runnerFlowRuns(stateTypes: [FlowRun.StateType], limit: Int) async throws -> [FlowRun] {
        try await selectFlowRuns(deploymentID: nil, stateTypes: stateTypes, runner: processName, limit: limit, oldestFirst: true)
    }

    private func selectFlowRuns(
        deploymentID: UUID?, stateTypes: [FlowRun.StateType]?, runner: String?, limit: Int, oldestFirst: Bool
    ) async throws -> [FlowRun] {
        try await api.perform { session in
            var conditions: [String] = []
            var values: [SQLValue] = []
            if let deploymentID {
                values.append(.text(deploymentID.lowercasedText))
                conditions.append("deployment_id = $\(values.count)")
            }
            if let stateTypes, !stateTypes.isEmpty {
                values.append(.texts(stateTypes.map(\.rawValue)))
                conditions.append("state_type = ANY($\(values.count)::text[])")
            }
            if let runner {
                values.append(.text(runner))
                conditions.append("runner = $\(values.count)")
            }
            values.append(.int(limit))
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            let order = oldestFirst ? "ASC" : "DESC"
            return try session.execute("SELECT * FROM flow_runs \(whereClause) ORDER BY created \(order), seq \(order) LIMIT $\(values.count)", values)
                .map(Self.flowRun)
        }
    }

    static func flowRun(_ row: PostgresRow) throws -> FlowRun {
        let columns = ColumnReader(row)
        let state = FlowRun.State(
            FlowRun.StateType(rawValue: try columns.string("state_type")) ?? .crashed, name: try columns.string("state_name"),
            message: try columns.optionalString("state_message"), at: Instant(microseconds: try columns.int64("state_timestamp")))
        return FlowRun(
            id: UUID(text: try columns.string("id")) ?? UUID(), name: try columns.string("name"),
            deploymentID: UUID(text: try columns.string("deployment_id")) ?? UUID(), deploymentName: try columns.string("deployment_name"),
            flowID: UUID(text: try columns.string("flow_id")) ?? UUID(), flowName: try columns.string("flow_name"),
            parameters: (try? JSONValue.parse(columns.string("parameters"))) ?? .object([:]), idempotencyKey: try columns.optionalString("idempotency_key"),
            state: state, transitions: try columns.int("transitions"), created: Instant(microseconds: try columns.int64("created")),
            started: try row.value("started", as: Int64?.self).map(Instant.init(microseconds:)),
            ended: try row.value("ended", as: Int64?.self).map(Instant.init(microseconds:)), exitCode: try columns.optionalInt("exit_code"),
            pid: try columns.optionalInt("pid"), createdBy: try columns.optionalString("created_by"), logPath: try columns.string("log_path"))
    }
}
