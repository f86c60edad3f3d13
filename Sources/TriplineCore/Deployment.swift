public import Foundation

/// A deployment of Tripline's local runner, declared in `rules/deployments/`: a command that `run-deployment` starts
/// as a flow run, with its parameters as JSON.
public struct Deployment: Sendable, Hashable {
    /// The name actions use (`deployment: nightly-report`).
    public var name: String
    /// The program and its arguments (no shell is involved unless the command names one).
    public var command: [String]
    /// The folder the command runs in; relative paths are resolved against the folder of the file that declares the
    /// deployment. `nil`: the run's own folder under the data directory.
    public var workingDirectory: String?
    /// Environment variables given to the command; values may be secret references (`env:NAME`, `file:PATH`).
    public var environment: [String: SecretValue]
    /// How long a run may take before it is terminated (SIGTERM, then SIGKILL) and marked Crashed; `nil`: no limit.
    public var timeout: TimeSpan?
    /// How many runs of this deployment may run at once; the others wait in Scheduled.
    public var concurrencyLimit: Int
    /// The flow's name (the `prefect.flow.<id>` related resource); the deployment's name by default.
    public var flowName: String
    /// Free-form description.
    public var description: String
    /// Where it was declared.
    public var source: SourceLocation?

    /// Creates a deployment.
    public init(
        name: String, command: [String], workingDirectory: String? = nil, environment: [String: SecretValue] = [:], timeout: TimeSpan? = nil,
        concurrencyLimit: Int = 1, flowName: String? = nil, description: String = "", source: SourceLocation? = nil
    ) {
        self.name = name
        self.command = command
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.timeout = timeout
        self.concurrencyLimit = concurrencyLimit
        self.flowName = flowName ?? name
        self.description = description
        self.source = source
    }

    /// The stable id, derived from the name (`prefect.deployment.<id>`).
    public var id: UUID { Self.id(name: name) }

    /// The stable id of the flow, derived from the flow's name (`prefect.flow.<id>`).
    public var flowID: UUID { UUID(stableName: "flow:\(flowName)") }

    /// The id of the deployment named `name`.
    public static func id(name: String) -> UUID { UUID(stableName: "deployment:\(name)") }

    /// The deployment as the API shows it (secret references as written, never their values).
    public var jsonValue: JSONValue {
        .object([
            "id": .string(id.lowercasedText), "name": .string(name), "command": .array(command.map(JSONValue.string)),
            "working_directory": workingDirectory.map(JSONValue.string) ?? .null,
            "environment": .object(environment.mapValues { .string($0.isReference ? $0.description : "<value>") }),
            "timeout": timeout.map { .double($0.seconds) } ?? .null, "concurrency_limit": .int(Int64(concurrencyLimit)),
            "flow_name": .string(flowName), "flow_id": .string(flowID.lowercasedText), "description": .string(description),
        ])
    }
}
