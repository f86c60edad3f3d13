/// An action of an automation: its `type` and its fields, validated against the schema of that type.
///
/// Fields are kept as JSON so that templates and destination-specific options pass through unchanged to the action
/// layer, which reads them with the accessors it needs.
public struct Action: Sendable, Hashable {
    /// The `type` discriminator, e.g. `run-deployment`.
    public var type: String
    /// Every field except `type`, as written (defaults are not filled in).
    public var fields: [String: JSONValue]

    /// Creates an action.
    public init(type: String, fields: [String: JSONValue] = [:]) {
        self.type = type
        self.fields = fields
    }

    /// The action as JSON.
    public var jsonValue: JSONValue {
        var object = fields
        object["type"] = .string(type)
        return .object(object)
    }
}

/// The fields each action type accepts, and how to check them.
public struct ActionSchema: Sendable {
    /// The kind of value a field takes.
    public enum FieldKind: Sendable, Hashable {
        case string
        case optionalString
        case uuid
        case optionalUUID
        case bool
        case object
        case optionalObject
        case nonNegativeSeconds
        case oneOf([String])
        case stringOrObject
    }

    /// A field of an action type.
    public struct Field: Sendable {
        /// The field's name.
        public var name: String
        /// Its kind.
        public var kind: FieldKind
        /// Whether it must be given.
        public var required: Bool

        /// Creates a field description.
        public init(_ name: String, _ kind: FieldKind, required: Bool = false) {
            self.name = name
            self.kind = kind
            self.required = required
        }
    }

    /// The type this schema describes.
    public var type: String
    /// Its fields.
    public var fields: [Field]

    /// Creates a schema.
    public init(type: String, fields: [Field]) {
        self.type = type
        self.fields = fields
    }

    /// Prefect's server action types (`ServerActionTypes` in prefect 3.9).
    public static let prefect: [ActionSchema] = {
        let source = Field("source", .oneOf(["selected", "inferred"]))
        let stateTypes = ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"]
        return [
            ActionSchema(type: "do-nothing", fields: []),
            ActionSchema(
                type: "run-deployment",
                fields: [
                    source, Field("deployment_id", .optionalUUID), Field("parameters", .optionalObject), Field("job_variables", .optionalObject),
                    Field("schedule_after", .nonNegativeSeconds),
                ]),
            ActionSchema(type: "pause-deployment", fields: [source, Field("deployment_id", .optionalUUID)]),
            ActionSchema(type: "resume-deployment", fields: [source, Field("deployment_id", .optionalUUID)]),
            ActionSchema(type: "cancel-flow-run", fields: []),
            ActionSchema(type: "delete-flow-run", fields: []),
            ActionSchema(type: "suspend-flow-run", fields: []),
            ActionSchema(type: "resume-flow-run", fields: []),
            ActionSchema(
                type: "change-flow-run-state",
                fields: [
                    Field("name", .optionalString), Field("state", .oneOf(stateTypes), required: true), Field("message", .optionalString),
                    Field("force", .bool),
                ]),
            ActionSchema(
                type: "send-notification",
                fields: [Field("block_document_id", .uuid, required: true), Field("subject", .string), Field("body", .string, required: true)]),
            ActionSchema(type: "call-webhook", fields: [Field("block_document_id", .uuid, required: true), Field("payload", .stringOrObject)]),
            ActionSchema(type: "pause-work-pool", fields: [source, Field("work_pool_id", .optionalUUID)]),
            ActionSchema(type: "resume-work-pool", fields: [source, Field("work_pool_id", .optionalUUID)]),
            ActionSchema(type: "pause-work-queue", fields: [source, Field("work_queue_id", .optionalUUID)]),
            ActionSchema(type: "resume-work-queue", fields: [source, Field("work_queue_id", .optionalUUID)]),
            ActionSchema(type: "pause-automation", fields: [source, Field("automation_id", .optionalUUID)]),
            ActionSchema(type: "resume-automation", fields: [source, Field("automation_id", .optionalUUID)]),
        ]
    }()

    /// The field of a `selected` action that names its target, for the types that have a `source`.
    static let selectedTargetField: [String: String] = [
        "run-deployment": "deployment_id", "pause-deployment": "deployment_id", "resume-deployment": "deployment_id",
        "pause-work-pool": "work_pool_id", "resume-work-pool": "work_pool_id", "pause-work-queue": "work_queue_id",
        "resume-work-queue": "work_queue_id", "pause-automation": "automation_id", "resume-automation": "automation_id",
    ]
}
