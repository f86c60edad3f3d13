import Foundation
import Logging
import MetricsTestKit
import Testing
import TriplineKafka

/// The Kafka broker a test talks to: librdkafka's mock cluster inside the test process (always there), or a real
/// Kafka-protocol broker (Tansu) that .ci/run starts and names in TRIPLINE_KAFKA_BROKER, with the `tansu` binary in
/// TRIPLINE_KAFKA_TANSU for creating topics and restarting brokers.
final class KafkaTestBroker: @unchecked Sendable {
    // Mutated only by the test that owns it (restart), one step at a time.
    let mock: KafkaMockCluster?
    private(set) var servers: [String]
    let tansu: String?
    var process: Process?

    /// Whether a real broker was named; the real-broker tests are skipped (and say so) without one.
    static let realBrokerAvailable =
        ProcessInfo.processInfo.environment["TRIPLINE_KAFKA_BROKER"] != nil && ProcessInfo.processInfo.environment["TRIPLINE_KAFKA_TANSU"] != nil
    static let skipMessage = "no real Kafka broker: set TRIPLINE_KAFKA_BROKER=host:port and TRIPLINE_KAFKA_TANSU=/path/to/tansu (.ci/run does, with librdkafka 2.16 on LD_LIBRARY_PATH)"

    private init(mock: KafkaMockCluster?, servers: [String], tansu: String?) {
        self.mock = mock
        self.servers = servers
        self.tansu = tansu
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// librdkafka's mock cluster with three brokers.
    static func mockCluster() throws -> KafkaTestBroker {
        let cluster = try KafkaMockCluster(brokers: 3)
        return KafkaTestBroker(mock: cluster, servers: cluster.bootstrapServers, tansu: nil)
    }

    /// The real broker named by the environment.
    static func shared() throws -> KafkaTestBroker {
        let environment = ProcessInfo.processInfo.environment
        let server = try #require(environment["TRIPLINE_KAFKA_BROKER"], "\(skipMessage)")
        return KafkaTestBroker(mock: nil, servers: [server], tansu: environment["TRIPLINE_KAFKA_TANSU"])
    }

    /// A real broker of the test's own on a free port (so that the test may restart it), in-memory storage.
    static func own() async throws -> KafkaTestBroker {
        let tansu = try #require(ProcessInfo.processInfo.environment["TRIPLINE_KAFKA_TANSU"], "\(skipMessage)")
        let broker = KafkaTestBroker(mock: nil, servers: ["127.0.0.1:\(Int.random(in: 30_000..<40_000))"], tansu: tansu)
        try await broker.startProcess()
        return broker
    }

    var isMock: Bool { mock != nil }

    /// Starts (again) the test's own broker on its port.
    func startProcess() async throws {
        let tansu = try #require(tansu)
        let url = "tcp://\(servers[0])"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tansu)
        process.arguments = ["broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/", "--silent"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await Task.sleep(for: .milliseconds(300))
    }

    /// Kills the test's own broker (kill -9).
    func killProcess() async throws {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Creates a topic with `partitions` partitions.
    func createTopic(_ name: String, partitions: Int32) async throws {
        if let mock {
            try mock.createTopic(name, partitions: partitions)
            return
        }
        let tansu = try #require(tansu, "\(Self.skipMessage)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tansu)
        process.arguments = ["topic", "create", "--broker", "tcp://\(servers[0])", "--partitions", String(partitions), name]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "tansu topic create \(name)")
    }

    /// A producer running in the test.
    func producer() throws -> (KafkaProducer, Task<Void, any Error>) {
        var configuration = KafkaProducerConfiguration(bootstrapServers: servers)
        configuration.additionalProperties["message.max.bytes"] = "4000000"
        var logger = Logger(label: "test.kafka.producer")
        logger.logLevel = .critical
        let producer = try KafkaProducer(configuration: configuration, logger: logger, metricsFactory: TestMetrics())
        return (producer, Task { try await producer.run() })
    }

    /// Produces `values` to `topic`, `window` at a time, each awaited.
    func produce(_ topic: String, _ values: [(key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader])], window: Int = 2000) async throws {
        let (producer, task) = try producer()
        var index = 0
        while index < values.count {
            let slice = values[index..<min(values.count, index + window)]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for item in slice { group.addTask { _ = try await producer.produce(topic: topic, key: item.key, value: item.value, headers: item.headers) } }
                try await group.waitForAll()
            }
            index += window
        }
        producer.triggerGracefulShutdown()
        try await task.value
    }

    /// Reads every record of `topic` a new group finds within `window`.
    func readAll(_ topic: String, window: Duration) async throws -> [KafkaConsumerMessage] {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "reader-\(UUID().uuidString)", subscription: .topics([topic]))
        configuration.sessionTimeout = .seconds(6)
        configuration.pollInterval = .milliseconds(50)
        var logger = Logger(label: "test.kafka.reader")
        logger.logLevel = .critical
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger, metricsFactory: TestMetrics())
        let task = Task { try await consumer.run() }
        var records: [KafkaConsumerMessage] = []
        let deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline {
            if let batch = try await consumer.nextBatch(maximum: 1000, stop: { ContinuousClock.now >= deadline }) { records += batch } else { break }
        }
        consumer.triggerGracefulShutdown()
        try await task.value
        return records
    }
}

/// Rules for a server reading Kafka: a source per (name, format, topic), short group timeouts for tests.
func kafkaSourceRules(_ broker: KafkaTestBroker, _ sources: [(name: String, format: String, topic: String, deadLetters: String?)], group: String = "tripline-test")
    -> String
{
    sources.map { source in
        """
        name: \(source.name)
        brokers: [\(broker.servers.joined(separator: ", "))]
        topics: [\(source.topic)]
        group_id: \(group)-\(source.name)
        format: \(source.format)
        \(source.deadLetters.map { "dead_letter_topic: \($0)" } ?? "")
        properties:
          session.timeout.ms: 6000
          heartbeat.interval.ms: 500
          max.poll.interval.ms: 20000
          topic.metadata.refresh.interval.ms: 2000
          reconnect.backoff.max.ms: 1000
        """
    }.joined(separator: "\n---\n")
}

extension ServerProcess {
    /// How many stored events have one of `names` (any time since 2000).
    func count(_ names: [String]) async throws -> Int {
        let filter = #"{"filter": {"event": {"name": [\#(names.map { "\"\($0)\"" }.joined(separator: ","))]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 1}"#
        let (status, page) = try await json("POST", "/api/events/filter", json: filter)
        guard status == 200 else { return -1 }
        return (page as? [String: Any])?["total"] as? Int ?? -1
    }

    /// Stored events named `name` (up to 50).
    func events(_ name: String) async throws -> [[String: Any]] {
        let filter = #"{"filter": {"event": {"name": ["\#(name)"]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 50}"#
        let (_, page) = try await json("POST", "/api/events/filter", json: filter)
        return (page as? [String: Any])?["events"] as? [[String: Any]] ?? []
    }

    /// Waits until `count(names)` reaches `expected`; returns the last count.
    @discardableResult
    func waitForCount(_ names: [String], _ expected: Int, timeout: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        var last = -1
        while ContinuousClock.now < deadline {
            if let count = try? await count(names) {
                last = count
                if count >= expected { return count }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        return last
    }

    /// Writes a rules file below the rules folder (creating its folder).
    func writeRule(_ relativePath: String, _ text: String) throws {
        let url = folder.appendingPathComponent("rules/\(relativePath)")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }
}

/// An event as a Kafka value.
func eventRecord(_ number: Int, _ name: String, resource: String, withID: Bool = true) -> (key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader]) {
    var object = TestEvent.json(number, name, resource: resource)
    if !withID { object["id"] = nil }
    let data = try! JSONSerialization.data(withJSONObject: object)
    return (Array(resource.utf8), [UInt8](data), [])
}
