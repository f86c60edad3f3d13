internal import CRdKafka

/// The error type of TriplineKafka: a code saying what kind of problem it is, a reason, librdkafka's own error code
/// when there is one, and where in Tripline the error was raised.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of problem this is. Extensible: later versions add codes without breaking `switch`es.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case configuration, client, consumer, producer, commit, delivery, shutdown, fatal
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A configuration property was refused by librdkafka.
        public static let configuration = Code(.configuration)
        /// Creating the client failed.
        public static let client = Code(.client)
        /// The consumer reported an error (subscribe, poll, store offsets).
        public static let consumer = Code(.consumer)
        /// The producer could not queue a message.
        public static let producer = Code(.producer)
        /// An offset commit failed.
        public static let commit = Code(.commit)
        /// A message was not delivered.
        public static let delivery = Code(.delivery)
        /// The client is shutting down or shut down.
        public static let shutdown = Code(.shutdown)
        /// librdkafka raised a fatal error; the client cannot be used any more.
        public static let fatal = Code(.fatal)

        public var description: String { base.rawValue }
    }

    /// What kind of problem this is.
    public var code: Code
    /// What went wrong.
    public var reason: String
    /// librdkafka's error code (`rd_kafka_resp_err_t`), when the error comes from librdkafka.
    public var rdKafkaCode: Int32?
    /// Where the error was raised.
    public var file: String
    /// Where the error was raised.
    public var line: Int

    /// Creates an error.
    public init(_ code: Code, _ reason: String, rdKafkaCode: Int32? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.rdKafkaCode = rdKafkaCode
        self.file = file
        self.line = line
    }

    public var description: String {
        let suffix = rdKafkaCode.map { " (librdkafka error \($0))" } ?? ""
        return "Kafka \(code) error: \(reason)\(suffix) [\(file):\(line)]"
    }
}

extension KafkaError {
    /// Whether sending the same record again can never succeed (it is too large, malformed, or the topic name is
    /// invalid), so that retrying it would stall the caller forever.
    public var isPermanentForRecord: Bool {
        guard let code = rdKafkaCode else { return false }
        return Self.permanentRecordCodes.contains(code)
    }

    static let permanentRecordCodes: Set<Int32> = [
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue, RD_KAFKA_RESP_ERR_INVALID_MSG.rawValue, RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION.rawValue, RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
    ]
}
