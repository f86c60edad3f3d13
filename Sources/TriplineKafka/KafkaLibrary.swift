internal import CRdKafka

/// Facts about the librdkafka the process runs with.
public enum KafkaLibrary {
    /// librdkafka's version, e.g. `2.0.2` (the library loaded at run time, which may be newer than the headers).
    public static var version: String { String(cString: rd_kafka_version_str()) }
}
