/// An `OpaquePointer` to a librdkafka object that is shared across threads.
///
/// `@unchecked Sendable` is safe because the pointee is one of librdkafka's thread-safe handles (`rd_kafka_t`,
/// `rd_kafka_queue_t`, `rd_kafka_mock_cluster_t`); the owner of the wrapper is responsible for its lifetime.
struct SendableOpaquePointer: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}
