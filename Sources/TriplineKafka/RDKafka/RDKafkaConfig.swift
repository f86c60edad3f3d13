internal import CRdKafka
internal import Foundation

/// Builds librdkafka's `rd_kafka_conf_t` from properties.
enum RDKafkaConfig {
    /// Creates a configuration object holding `properties`.
    /// - Returns: A new `rd_kafka_conf_t`; the caller owns it and must pass it to `rd_kafka_new` (which takes it on
    ///   success) or destroy it with `rd_kafka_conf_destroy`.
    /// - Throws: A ``KafkaError`` with code `.configuration` naming the property librdkafka refused. The property's
    ///   value is never part of the error: it may be a secret.
    static func make(_ properties: [String: String]) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(.configuration, "rd_kafka_conf_new failed") }
        // Sorted, so that the first problem reported is the same on every run.
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            var message = [CChar](repeating: 0, count: 512)
            let result = rd_kafka_conf_set(conf, key, value, &message, message.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw KafkaError(.configuration, "property \"\(key)\" was refused: \(redacted(detail, value: value))")
            }
        }
        return conf
    }

    /// librdkafka's message about a refused property may quote the value; a secret must not reach logs or errors.
    static func redacted(_ message: String, value: String) -> String {
        guard value.count >= 3 else { return message }
        return message.replacingOccurrences(of: value, with: "<redacted>")
    }
}
