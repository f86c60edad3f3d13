internal import CRdKafka
internal import Logging
import Synchronization

/// librdkafka's rebalance callback (`rd_kafka_conf_set_rebalance_cb`). It runs synchronously inside
/// `rd_kafka_consumer_poll` and must assign or revoke before it returns: the group protocol waits for it.
/// - Important: The signature must match the C typedef exactly; `opaque` is the unretained
///   ``RDKafkaRebalanceContext`` set by ``RDKafkaClient``, which outlives the `rd_kafka_t`.
func rdKafkaRebalanceCallback(
    _ handle: OpaquePointer?, _ error: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
    _ opaque: UnsafeMutableRawPointer?
) {
    guard let handle, let opaque else { return }
    Unmanaged<RDKafkaRebalanceContext>.fromOpaque(opaque).takeUnretainedValue().handle(handle, error, partitions)
}

/// Performs assignments and revocations for the rebalance callback (eager or cooperative, as the group's protocol
/// says) and keeps the current assignment for the consumer (lag metrics, tests).
final class RDKafkaRebalanceContext: Sendable {
    struct State {
        var assignment: Set<KafkaTopicPartition> = []
        var generation = 0
        /// Partitions revoked since the consumer last looked (it forgets their lag gauges).
        var revoked: Set<KafkaTopicPartition> = []
    }

    let logger: Logger
    let state = Mutex(State())

    init(logger: Logger) { self.logger = logger }

    /// The partitions currently assigned.
    var assignment: Set<KafkaTopicPartition> { state.withLock { $0.assignment } }

    /// Takes the partitions revoked since the last call.
    func takeRevoked() -> Set<KafkaTopicPartition> {
        state.withLock { state in
            let revoked = state.revoked
            state.revoked = []
            return revoked
        }
    }

    func handle(_ handle: OpaquePointer, _ error: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let cooperative = rd_kafka_rebalance_protocol(handle).map { String(cString: $0) } == "COOPERATIVE"
        let changed = Set(RDKafkaTopicPartitionList.elements(partitions).map(\.topicPartition))
        switch error {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if cooperative {
                if let failure = rd_kafka_incremental_assign(handle, partitions) { report("incremental assign", consuming: failure) }
            } else {
                let result = rd_kafka_assign(handle, partitions)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { logger.error("assign failed", metadata: ["error": "\(String(cString: rd_kafka_err2str(result)))"]) }
            }
            state.withLock { state in
                if !cooperative { state.revoked.formUnion(state.assignment.subtracting(changed)); state.assignment = [] }
                state.assignment.formUnion(changed)
                state.revoked.subtract(changed)
                state.generation += 1
            }
            logger.info("partitions assigned", metadata: ["partitions": "\(changed.sorted().map(\.description).joined(separator: ","))", "protocol": "\(cooperative ? "cooperative" : "eager")"])
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            if cooperative {
                if let failure = rd_kafka_incremental_unassign(handle, partitions) { report("incremental unassign", consuming: failure) }
            } else {
                let result = rd_kafka_assign(handle, nil)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR { logger.error("unassign failed", metadata: ["error": "\(String(cString: rd_kafka_err2str(result)))"]) }
            }
            state.withLock { state in
                let gone = cooperative ? changed : state.assignment.union(changed)
                state.assignment.subtract(gone)
                state.revoked.formUnion(gone)
                state.generation += 1
            }
            logger.info("partitions revoked", metadata: ["partitions": "\(changed.sorted().map(\.description).joined(separator: ","))", "protocol": "\(cooperative ? "cooperative" : "eager")"])
        default:
            // Anything else leaves the assignment unknown: drop all of it, the group will assign again.
            logger.warning("rebalance error; unassigning every partition", metadata: ["error": "\(String(cString: rd_kafka_err2str(error)))"])
            _ = rd_kafka_assign(handle, nil)
            state.withLock { state in
                state.revoked.formUnion(state.assignment)
                state.assignment = []
                state.generation += 1
            }
        }
    }

    /// Logs and destroys an `rd_kafka_error_t`.
    private func report(_ operation: String, consuming error: OpaquePointer) {
        defer { rd_kafka_error_destroy(error) }
        logger.error("\(operation) failed", metadata: ["error": "\(String(cString: rd_kafka_error_string(error)))"])
    }
}
