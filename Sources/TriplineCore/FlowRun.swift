public import Foundation

/// A flow run of the local runner, as recorded in the store.
public struct FlowRun: Sendable, Hashable {
    /// Prefect's state types.
    public enum StateType: String, Sendable, Hashable, CaseIterable {
        case scheduled = "SCHEDULED"
        case pending = "PENDING"
        case running = "RUNNING"
        case completed = "COMPLETED"
        case failed = "FAILED"
        case cancelled = "CANCELLED"
        case crashed = "CRASHED"
        case paused = "PAUSED"
        case cancelling = "CANCELLING"

        /// Whether a run in this state is over.
        public var isFinal: Bool { [.completed, .failed, .cancelled, .crashed].contains(self) }

        /// Prefect's default name of a state of this type (`Completed`).
        public var defaultName: String { rawValue.prefix(1) + rawValue.dropFirst().lowercased() }

        /// Parses a type (`FAILED`) or a default name (`Failed`).
        public init?(text: String) {
            self.init(rawValue: text.uppercased())
        }
    }

    /// A state: its type, its name (`Suspended` is a PAUSED state), an optional message and when it was entered.
    public struct State: Sendable, Hashable {
        public var type: StateType
        public var name: String
        public var message: String?
        public var timestamp: Instant

        /// Creates a state; the name defaults to the type's.
        public init(_ type: StateType, name: String? = nil, message: String? = nil, at timestamp: Instant) {
            self.type = type
            self.name = name ?? type.defaultName
            self.message = message
            self.timestamp = timestamp
        }

        /// The state as Prefect's event payloads show it (`state_payload`): type, name and message when present.
        public var payload: JSONValue {
            var object: [String: JSONValue] = ["type": .string(type.rawValue), "name": .string(name)]
            if let message, !message.isEmpty { object["message"] = .string(message) }
            if type == .paused { object["pause_reschedule"] = .string(name == "Suspended" ? "true" : "false") }
            return .object(object)
        }
    }

    /// The run's id (`prefect.flow-run.<id>`).
    public var id: UUID
    /// Its name (`prefect.resource.name`).
    public var name: String
    /// The deployment's id and name.
    public var deploymentID: UUID
    public var deploymentName: String
    /// The flow's id and name.
    public var flowID: UUID
    public var flowName: String
    /// The parameters given to the process, as JSON.
    public var parameters: JSONValue
    /// The idempotency key of the action that created it: a second action with the same key gets this run back.
    public var idempotencyKey: String?
    /// The current state.
    public var state: State
    /// How many state changes it went through (names the state events' ids).
    public var transitions: Int
    /// When it was created, started and ended.
    public var created: Instant
    public var started: Instant?
    public var ended: Instant?
    /// The process's exit status (or 128 + signal number when a signal ended it).
    public var exitCode: Int?
    /// The process id while it runs.
    public var pid: Int?
    /// The outbox entry (delivery) that created it, `<firing id>/<action index>`.
    public var createdBy: String?
    /// The file holding its output (stdout and stderr).
    public var logPath: String

    /// Creates a run record.
    public init(
        id: UUID, name: String, deploymentID: UUID, deploymentName: String, flowID: UUID, flowName: String, parameters: JSONValue,
        idempotencyKey: String?, state: State, transitions: Int = 1, created: Instant, started: Instant? = nil, ended: Instant? = nil,
        exitCode: Int? = nil, pid: Int? = nil, createdBy: String? = nil, logPath: String
    ) {
        self.id = id
        self.name = name
        self.deploymentID = deploymentID
        self.deploymentName = deploymentName
        self.flowID = flowID
        self.flowName = flowName
        self.parameters = parameters
        self.idempotencyKey = idempotencyKey
        self.state = state
        self.transitions = transitions
        self.created = created
        self.started = started
        self.ended = ended
        self.exitCode = exitCode
        self.pid = pid
        self.createdBy = createdBy
        self.logPath = logPath
    }

    /// The run as the API shows it, in the spirit of Prefect's flow run (`state_type`, `state_name`, `state`).
    public var jsonValue: JSONValue {
        var state: [String: JSONValue] = [
            "type": .string(self.state.type.rawValue), "name": .string(self.state.name), "timestamp": .string(self.state.timestamp.rfc3339),
        ]
        state["message"] = self.state.message.map(JSONValue.string) ?? .null
        return .object([
            "id": .string(id.lowercasedText), "name": .string(name), "deployment_id": .string(deploymentID.lowercasedText),
            "deployment_name": .string(deploymentName), "flow_id": .string(flowID.lowercasedText), "flow_name": .string(flowName),
            "parameters": parameters, "idempotency_key": idempotencyKey.map(JSONValue.string) ?? .null,
            "state_type": .string(self.state.type.rawValue),
            "state_name": .string(self.state.name), "state": .object(state), "created": .string(created.rfc3339),
            "start_time": started.map { .string($0.rfc3339) } ?? .null, "end_time": ended.map { .string($0.rfc3339) } ?? .null,
            "total_run_time": started.map { .double(((ended ?? self.state.timestamp) - $0).seconds) } ?? .double(0),
            "exit_code": exitCode.map { .int(Int64($0)) } ?? .null, "pid": pid.map { .int(Int64($0)) } ?? .null,
            "created_by": createdBy.map(JSONValue.string) ?? .null,
        ])
    }
}

/// Where the local runner records its flow runs. Implemented by TriplineStorage.
public protocol FlowRunStore: Sendable {
    /// Stores a new run unless one with its idempotency key exists.
    /// - Returns: The stored run (the earlier one for a repeated key) and whether it is new.
    func createFlowRun(_ run: FlowRun) async throws -> (run: FlowRun, created: Bool)
    /// Saves a run's state, times, exit code and process id.
    func saveFlowRun(_ run: FlowRun) async throws
    /// One run by id.
    func flowRun(id: UUID) async throws -> FlowRun?
    /// Runs, newest first (or oldest first), optionally only of one deployment and in some state types.
    func flowRuns(deploymentID: UUID?, stateTypes: [FlowRun.StateType]?, limit: Int, oldestFirst: Bool) async throws -> [FlowRun]
    /// The runs this process's runner is in charge of, oldest first, in some state types: every run on a store of
    /// one process; on a store shared by several processes, the runs this process created (a run's process runs on
    /// the machine whose runner started it).
    func runnerFlowRuns(stateTypes: [FlowRun.StateType], limit: Int) async throws -> [FlowRun]
}

extension FlowRunStore {
    public func runnerFlowRuns(stateTypes: [FlowRun.StateType], limit: Int) async throws -> [FlowRun] {
        try await flowRuns(deploymentID: nil, stateTypes: stateTypes, limit: limit, oldestFirst: true)
    }
}
