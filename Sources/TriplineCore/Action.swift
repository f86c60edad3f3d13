public import Foundation

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

    /// The action as the automations API shows it: Prefect's clients require a `block_document_id` on
    /// `send-notification` and `call-webhook`, so an action that names a destination instead gets a stable id derived
    /// from the destination's name (the `destination` field stays, for Tripline).
    public var apiJSONValue: JSONValue {
        guard ActionSchema.destinationTypes.contains(type), let name = fields["destination"]?.stringValue,
            fields["block_document_id"] == nil || fields["block_document_id"] == .null
        else { return jsonValue }
        var object = fields
        object["type"] = .string(type)
        object["block_document_id"] = .string(UUID(stableName: "destination:\(name)").lowercasedText)
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
        /// Any JSON value (Block Kit blocks, PagerDuty custom details, emitted payloads).
        case any
        /// Tripline's retry settings: `{max_attempts, backoff, max_backoff}`.
        case retryPolicy
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
                    // Tripline: the Prefect server to run it on, and the deployment by `flow/deployment` name.
                    Field("destination", .string), Field("deployment", .string),
                ]),
            ActionSchema(type: "pause-deployment", fields: [source, Field("deployment_id", .optionalUUID)]),
            ActionSchema(type: "resume-deployment", fields: [source, Field("deployment_id", .optionalUUID)]),
            // Tripline: `destination` names the Prefect server whose flow run it is.
            ActionSchema(type: "cancel-flow-run", fields: [Field("destination", .string)]),
            ActionSchema(type: "delete-flow-run", fields: [Field("destination", .string)]),
            ActionSchema(type: "suspend-flow-run", fields: [Field("destination", .string)]),
            ActionSchema(type: "resume-flow-run", fields: [Field("destination", .string)]),
            ActionSchema(
                type: "change-flow-run-state",
                fields: [
                    Field("name", .optionalString), Field("state", .oneOf(stateTypes), required: true), Field("message", .optionalString),
                    Field("force", .bool), Field("destination", .string),
                ]),
            ActionSchema(
                type: "send-notification",
                fields: [
                    Field("block_document_id", .optionalUUID), Field("destination", .string), Field("subject", .string),
                    Field("body", .string, required: true),
                    // Slack
                    Field("blocks", .any),
                    // PagerDuty Events API v2
                    Field("event_action", .oneOf(["trigger", "acknowledge", "resolve"])), Field("dedup_key", .string),
                    Field("severity", .string), Field("source", .string), Field("component", .string), Field("group", .string),
                    Field("class", .string), Field("custom_details", .any), Field("timestamp", .string), Field("client", .string),
                    Field("client_url", .string), Field("links", .any), Field("images", .any),
                ]),
            ActionSchema(
                type: "call-webhook",
                fields: [
                    Field("block_document_id", .optionalUUID), Field("destination", .string), Field("payload", .stringOrObject),
                    Field("headers", .object), Field("method", .oneOf(["GET", "POST", "PUT", "PATCH", "DELETE"])), Field("timeout", .nonNegativeSeconds),
                ]),
            // Tripline: a templated event back into the event log.
            ActionSchema(
                type: "emit-event",
                fields: [
                    Field("event", .string, required: true), Field("resource", .object, required: true), Field("related", .any),
                    Field("payload", .any),
                ]),
            // Tripline: a record to a Kafka topic of a `kafka` destination, confirmed by the broker.
            ActionSchema(
                type: "kafka-produce",
                fields: [
                    Field("destination", .string, required: true), Field("topic", .string, required: true), Field("key", .string),
                    Field("value", .stringOrObject), Field("headers", .object),
                ]),
            ActionSchema(type: "pause-work-pool", fields: [source, Field("work_pool_id", .optionalUUID)]),
            ActionSchema(type: "resume-work-pool", fields: [source, Field("work_pool_id", .optionalUUID)]),
            ActionSchema(type: "pause-work-queue", fields: [source, Field("work_queue_id", .optionalUUID)]),
            ActionSchema(type: "resume-work-queue", fields: [source, Field("work_queue_id", .optionalUUID)]),
            ActionSchema(type: "pause-automation", fields: [source, Field("automation_id", .optionalUUID)]),
            ActionSchema(type: "resume-automation", fields: [source, Field("automation_id", .optionalUUID)]),
        ]
    }()

    /// Fields every action type accepts besides its own (Tripline's delivery settings).
    public static let commonFields: [Field] = [Field("retry", .retryPolicy)]

    /// Action types that need a destination (Tripline) or a block document (Prefect) to run.
    static let destinationTypes: Set<String> = ["send-notification", "call-webhook", "kafka-produce"]

    /// The field of a `selected` action that names its target, for the types that have a `source`.
    static let selectedTargetField: [String: String] = [
        "run-deployment": "deployment_id", "pause-deployment": "deployment_id", "resume-deployment": "deployment_id",
        "pause-work-pool": "work_pool_id", "resume-work-pool": "work_pool_id", "pause-work-queue": "work_queue_id",
        "resume-work-queue": "work_queue_id", "pause-automation": "automation_id", "resume-automation": "automation_id",
    ]
}
