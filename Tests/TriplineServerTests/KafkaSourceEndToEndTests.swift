import Foundation
import Testing
import TriplineKafka

let threeOrdersFire = """
    name: three orders
    trigger: {type: event, posture: Reactive, expect: [order.placed], for_each: [prefect.resource.id], threshold: 3, within: 600}
    actions: [{type: do-nothing}]
    """

/// `tripline serve` reading Kafka sources: against librdkafka's mock cluster always, and against a real
/// Kafka-protocol broker when .ci/run provides one.
@Suite(.serialized, .timeLimit(.minutes(10))) struct KafkaSourceEndToEndTests {
    // MARK: - Scenarios

    /// Records of every supported format are stored and fire; poison records are stored as rejections (and
    /// dead-lettered) while the partition keeps moving.
    func everyFormatIsStoredAndFires(_ broker: KafkaTestBroker) async throws {
        let run = UUID().uuidString.prefix(8)
        let (events, cloud, s3, dead, raw) = ("events-\(run)", "cloud-\(run)", "s3-\(run)", "events-\(run).rejected", "raw-\(run)")
        for topic in [events, cloud, s3, dead, raw] { try await broker.createTopic(topic, partitions: 2) }
        var records = (1...3).map { eventRecord(100 + $0, "order.placed", resource: "order.1") }
        records.append(eventRecord(104, "order.placed", resource: "order.2", withID: false))
        records.append((nil, Array("{not json".utf8), []))
        records.append((Array("gone".utf8), nil, []))
        records.append((nil, Array(#"{"event": "no resource"}"#.utf8), []))
        records.append((nil, [0xFF, 0x00, 0xC3, 0x28, 0x9F], []))
        records.append((nil, Array(repeating: UInt8(ascii: "x"), count: 2 * 1024 * 1024), []))
        try await broker.produce(events, records)
        let structured = #"{"specversion":"1.0","id":"ce-1","source":"urn:shop","type":"shop.checkout","data":{"total":5}}"#
        let binaryHeaders = [
            KafkaHeader(key: "ce_specversion", text: "1.0"), KafkaHeader(key: "ce_id", text: "ce-2"), KafkaHeader(key: "ce_source", text: "urn:shop"),
            KafkaHeader(key: "ce_type", text: "shop.checkout"), KafkaHeader(key: "content-type", text: "application/json"),
        ]
        try await broker.produce(cloud, [(nil, Array(structured.utf8), []), (nil, Array(#"{"total":7}"#.utf8), binaryHeaders)])
        let notification = #"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2026-01-02T10:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"landing"},"object":{"key":"in/file.csv","size":12,"eTag":"abc","sequencer":"0055AED6DCD90281E5"}}}]}"#
        try await broker.produce(s3, [(nil, Array(notification.utf8), [])])
        try await broker.produce(raw, [(Array("o-9".utf8), Array(#"{"status":"paid","amount":12}"#.utf8), []), (nil, Array("plain text".utf8), [])])

        let server = try ServerProcess(rules: ["fire.yaml": threeOrdersFire])
        try server.writeRule(
            "sources/kafka.yaml",
            kafkaSourceRules(broker, [("events", "prefect-event", events, dead), ("cloud", "cloudevents", cloud, nil), ("s3", "aws-s3", s3, nil)])
                + "\n---\n" + kafkaSourceRules(broker, [("raw", "raw", raw, nil)])
                + "\nmapping: {event: \"shop.{{ value.status|default:'line' }}\", resource: {prefect.resource.id: \"order.{{ key|default:'none' }}\"}}\n")
        try await server.start()
        #expect(try await server.waitForCount(["order.placed"], 4, timeout: .seconds(60)) == 4, "\(server.log().suffix(3000))")
        #expect(try await server.waitForCount(["tripline.kafka.record.rejected"], 5, timeout: .seconds(30)) == 5)
        #expect(try await server.waitForCount(["shop.checkout"], 2, timeout: .seconds(30)) == 2)
        #expect(try await server.waitForCount(["aws.s3.ObjectCreated:Put"], 1, timeout: .seconds(30)) == 1)
        #expect(try await server.waitForCount(["shop.paid", "shop.line"], 2, timeout: .seconds(30)) == 2, "raw records mapped by their templates")
        let paid = try await server.events("shop.paid").first
        #expect((paid?["resource"] as? [String: String])?["prefect.resource.id"] == "order.o-9")
        let (_, fired) = try await server.json("GET", "/api/firings")
        #expect((fired as? [[String: Any]])?.count == 1, "three orders of order.1 fired once")
        let rejected = try await server.events("tripline.kafka.record.rejected")
        let reasons = rejected.compactMap { ($0["payload"] as? [String: Any])?["reason"] as? String }.sorted()
        #expect(reasons == ["empty", "invalid_event", "invalid_json", "invalid_json", "too_large"])
        #expect(rejected.allSatisfy { ($0["payload"] as? [String: Any])?["topic"] as? String == events })
        var text = ""
        for _ in 0..<60 {
            text = String(decoding: try await server.request("GET", "/metrics").1, as: UTF8.self)
            if text.contains("tripline_kafka_consumer_lag{") { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(text.contains(#"tripline_kafka_records_rejected_total{source="events",reason="invalid_json"} 2"#), "\(text.split(separator: "\n").filter { $0.contains("kafka") })")
        #expect(text.contains(#"tripline_kafka_consumer_lag{group="tripline-test-events",topic="\#(events)",partition="0"} 0"#), "lag per partition, drained")

        let deadLetters = try await broker.readAll(dead, window: .seconds(10))
        #expect(deadLetters.count == 5, "every rejected record is also on the dead-letter topic")
        #expect(Set(deadLetters.compactMap { $0.header("tripline.rejected.reason")?.value.map { String(decoding: $0, as: UTF8.self) } }) == ["empty", "invalid_event", "invalid_json", "too_large"])
        let tooLarge = deadLetters.first { $0.header("tripline.rejected.reason")?.value == Array("too_large".utf8) }
        #expect(tooLarge?.value == nil && tooLarge?.header("tripline.rejected.value_dropped") != nil, "a value the topic can never take is dropped, its position kept")
        #expect(tooLarge?.header("tripline.rejected.offset") != nil)
        try await server.stop()
    }

    /// kill -9 in the middle of a backlog: after the restart every record is stored exactly once.
    func killDuringABacklogStoresEveryRecordOnce(_ broker: KafkaTestBroker, count: Int) async throws {
        let topic = "backlog-\(UUID().uuidString.prefix(8))"
        try await broker.createTopic(topic, partitions: 4)
        try await broker.produce(topic, (0..<count).map { eventRecord(1_000_000 + $0, "backlog.item", resource: "item.\($0 % 97)", withID: $0 % 2 == 0) })
        let server = try ServerProcess(rules: [:])
        try server.writeRule("sources/kafka.yaml", kafkaSourceRules(broker, [("backlog", "prefect-event", topic, nil)]))
        try await server.start()
        let partial = try await server.waitForCount(["backlog.item"], count / 5, timeout: .seconds(120))
        #expect(partial >= count / 5 && partial < count, "killed in the middle: \(partial) of \(count) stored")
        try await server.kill9()
        try await server.start()
        let started = ContinuousClock.now
        let final = try await server.waitForCount(["backlog.item"], count, timeout: .seconds(300))
        #expect(final == count, "every record stored exactly once after kill -9 (\(final) of \(count)); log:\n\(server.log().suffix(2000))")
        try await Task.sleep(for: .seconds(2))
        #expect(try await server.count(["backlog.item"]) == count, "and no record twice")
        let (_, metrics) = try await server.request("GET", "/metrics")
        let text = String(decoding: metrics, as: UTF8.self)
        print("kafka backlog: \(count) records, \(partial) before kill -9, rest drained in \(ContinuousClock.now - started) after restart")
        #expect(!text.contains("tripline_kafka_records_rejected_total"))
        try await server.stop()
    }

    /// Two servers in one group split the partitions; when one is killed, the other takes them over, nothing lost.
    func twoServersSplitAndOneTakesOver(_ broker: KafkaTestBroker) async throws {
        let topic = "split-\(UUID().uuidString.prefix(8))"
        try await broker.createTopic(topic, partitions: 4)
        let rules = kafkaSourceRules(broker, [("split", "prefect-event", topic, nil)], group: "split-\(topic)")
        let one = try ServerProcess(rules: [:])
        let two = try ServerProcess(rules: [:])
        try one.writeRule("sources/kafka.yaml", rules)
        try two.writeRule("sources/kafka.yaml", rules)
        try await one.start()
        try await two.start()
        // Both join before records arrive: wait until the group has settled (both consumers assigned).
        try await Task.sleep(for: .seconds(8))
        try await broker.produce(topic, (0..<400).map { eventRecord(2_000_000 + $0, "split.item", resource: "r.\($0)") })
        let deadline = ContinuousClock.now + .seconds(60)
        var (a, b) = (0, 0)
        while ContinuousClock.now < deadline {
            (a, b) = (try await one.count(["split.item"]), try await two.count(["split.item"]))
            if a + b >= 400 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(a + b == 400, "the group stored each record once between them: \(a) + \(b)")
        #expect(a > 0 && b > 0, "both members got partitions: \(a) / \(b)")

        try await one.kill9()
        try await broker.produce(topic, (400..<800).map { eventRecord(2_000_000 + $0, "split.item", resource: "r.\($0)") })
        // The killed member's partitions move once its session times out (6 s here).
        let taken = try await two.waitForCount(["split.item"], b + 400, timeout: .seconds(90))
        #expect(taken >= b + 400, "the survivor took over every partition: \(taken - b) of the 400 new records")
        try await two.stop()
    }

    // MARK: - librdkafka's mock cluster

    @Test func mockClusterEveryFormatIsStoredAndFires() async throws {
        try await everyFormatIsStoredAndFires(try .mockCluster())
    }

    @Test func mockClusterKillDuringABacklogStoresEveryRecordOnce() async throws {
        try await killDuringABacklogStoresEveryRecordOnce(try .mockCluster(), count: 20_000)
    }

    @Test func mockClusterTwoServersSplitAndOneTakesOver() async throws {
        try await twoServersSplitAndOneTakesOver(try .mockCluster())
    }

    @Test func mockClusterAServerStopsPromptlyWhenItsBrokersAreGone() async throws {
        var broker: KafkaTestBroker? = try .mockCluster()
        let topic = "gone-\(UUID().uuidString.prefix(8))"
        try await broker!.createTopic(topic, partitions: 2)
        try await broker!.produce(topic, (0..<50).map { eventRecord(4_000_000 + $0, "gone.item", resource: "r.\($0)") })
        let server = try ServerProcess(rules: [:])
        try server.writeRule("sources/kafka.yaml", kafkaSourceRules(broker!, [("gone", "prefect-event", topic, nil)]))
        try await server.start()
        #expect(try await server.waitForCount(["gone.item"], 50, timeout: .seconds(60)) == 50)
        broker = nil
        try await Task.sleep(for: .seconds(1))
        let process = try #require(server.process)
        let stopStarted = ContinuousClock.now
        process.terminate()
        while process.isRunning, ContinuousClock.now - stopStarted < .seconds(60) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!process.isRunning, "SIGTERM stops the server even with its brokers gone")
        #expect(ContinuousClock.now - stopStarted < .seconds(45), "stopped after \(ContinuousClock.now - stopStarted)")
        if !process.isRunning { #expect(process.terminationStatus == 0, "\(server.log().suffix(2000))") }
    }

    // MARK: - A real broker (Tansu)

    @Test(.enabled(if: KafkaTestBroker.realBrokerAvailable, "\(KafkaTestBroker.skipMessage)"))
    func brokerEveryFormatIsStoredAndFires() async throws {
        try await everyFormatIsStoredAndFires(try .shared())
    }

    @Test(.enabled(if: KafkaTestBroker.realBrokerAvailable, "\(KafkaTestBroker.skipMessage)"))
    func brokerKillDuringA100kBacklogStoresEveryRecordOnce() async throws {
        try await killDuringABacklogStoresEveryRecordOnce(try .shared(), count: 100_000)
    }

    @Test(.enabled(if: KafkaTestBroker.realBrokerAvailable, "\(KafkaTestBroker.skipMessage)"))
    func brokerRestartAndConsumptionResumes() async throws {
        let broker = try await KafkaTestBroker.own()
        let topic = "restart-\(UUID().uuidString.prefix(8))"
        try await broker.createTopic(topic, partitions: 2)
        try await broker.produce(topic, (0..<200).map { eventRecord(3_000_000 + $0, "restart.item", resource: "r.\($0)") })
        let server = try ServerProcess(rules: [:])
        try server.writeRule("sources/kafka.yaml", kafkaSourceRules(broker, [("restart", "prefect-event", topic, nil)]))
        try await server.start()
        #expect(try await server.waitForCount(["restart.item"], 200, timeout: .seconds(60)) == 200)
        // The broker dies and comes back (in-memory storage: it comes back empty, the topic is made again).
        try await broker.killProcess()
        try await Task.sleep(for: .seconds(2))
        try await broker.startProcess()
        try await broker.createTopic(topic, partitions: 2)
        try await broker.produce(topic, (200..<400).map { eventRecord(3_000_000 + $0, "restart.item", resource: "r.\($0)") })
        #expect(try await server.waitForCount(["restart.item"], 400, timeout: .seconds(120)) == 400, "consumption resumed after the broker came back:\n\(server.log().suffix(3000))")
        let (status, _) = try await server.request("GET", "/readyz")
        #expect(status == 200)
        try await server.stop()
        try await broker.killProcess()
    }

    @Test(.enabled(if: KafkaTestBroker.realBrokerAvailable, "\(KafkaTestBroker.skipMessage)"))
    func brokerTwoServersSplitAndOneTakesOver() async throws {
        try await twoServersSplitAndOneTakesOver(try .shared())
    }
}
