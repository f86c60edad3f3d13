import Foundation
import Logging
import MetricsTestKit
import Testing
import TriplineKafka

/// The consumer and producer against librdkafka's mock cluster: one cluster per test, shared by every client.
@Suite(.timeLimit(.minutes(2))) struct KafkaMockClusterTests {
    @Test func recordsRoundTripWithKeysHeadersTombstonesAndEmptyValues() async throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("roundtrip", partitions: 1)
        let producer = try RunningProducer(cluster.bootstrapServers)
        let first = try await producer.producer.produce(
            topic: "roundtrip", key: Array("order-1".utf8), value: Array(#"{"a":1}"#.utf8),
            headers: [KafkaHeader(key: "ce_type", text: "order.created"), KafkaHeader(key: "empty", value: nil), KafkaHeader(key: "ce_type", text: "again")])
        #expect(first.topic == "roundtrip")
        #expect(first.offset == 0)
        let tombstone = try await producer.producer.produce(topic: "roundtrip", key: Array("order-1".utf8), value: nil)
        #expect(tombstone.offset == 1)
        _ = try await producer.producer.produce(topic: "roundtrip", key: nil, value: [])
        _ = try await producer.producer.produce(topic: "roundtrip", key: [], value: [0, 255, 0xC3])
        try await producer.stop()

        let consumer = try RunningConsumer(consumerConfiguration(cluster.bootstrapServers, group: "g1", topics: ["roundtrip"]))
        let records = try await Reader(consumer.consumer).read(4)
        try #require(records.count == 4)
        #expect(records.map(\.offset) == [0, 1, 2, 3])
        #expect(text(records[0].key) == "order-1")
        #expect(text(records[0].value) == #"{"a":1}"#)
        #expect(records[0].headers.map(\.key) == ["ce_type", "empty", "ce_type"])
        #expect(text(records[0].headers[0].value) == "order.created")
        #expect(records[0].headers[1].value == nil)
        #expect(text(records[0].header("ce_type")?.value) == "order.created")
        #expect(records[0].timestamp.map { abs($0.timeIntervalSinceNow) < 60 } == true)
        #expect(records[1].isTombstone)
        #expect(text(records[1].key) == "order-1")
        #expect(records[2].key == nil)
        #expect(records[2].value == [] || records[2].value == nil, "an empty value is a legal record")
        #expect(records[3].value == [0, 255, 0xC3])
        try await consumer.stop()
    }

    @Test func aRestartedConsumerContinuesAfterTheCommittedOffsetAndRereadsWhatWasNotStored() async throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("orders", partitions: 1)
        let producer = try RunningProducer(cluster.bootstrapServers)
        for index in 0..<10 { _ = try await producer.producer.produce(topic: "orders", key: nil, value: Array("m-\(index)".utf8)) }

        let first = try RunningConsumer(consumerConfiguration(cluster.bootstrapServers, group: "restart", topics: ["orders"]))
        let reader = Reader(first.consumer)
        let records = try await reader.read(10)
        try #require(records.count == 10)
        // Only the first six are processed; the other four were handed out but not stored.
        try first.consumer.storeOffset(records[5])
        try await first.consumer.commit()
        try await first.stop()
        #expect(try await reader.iterator.next() == nil, "the sequence ends once the consumer is closed")

        let second = try RunningConsumer(consumerConfiguration(cluster.bootstrapServers, group: "restart", topics: ["orders"]))
        let secondReader = Reader(second.consumer)
        let again = try await secondReader.read(4)
        #expect(again.map(\.offset) == [6, 7, 8, 9], "continues after the committed offset; unstored records come again")
        #expect(again.map { text($0.value) } == ["m-6", "m-7", "m-8", "m-9"])
        // Stored but not explicitly committed: the close commits it.
        try second.consumer.storeOffset(again[3])
        try await second.stop()

        _ = try await producer.producer.produce(topic: "orders", key: nil, value: Array("m-10".utf8))
        let third = try RunningConsumer(consumerConfiguration(cluster.bootstrapServers, group: "restart", topics: ["orders"]))
        let next = try await Reader(third.consumer).read(1)
        #expect(next.map(\.offset) == [10], "the close committed the stored offset")
        try await third.stop()
        try await producer.stop()
    }

    @Test func twoConsumersOfOneGroupSplitThePartitions() async throws {
        try await splitsPartitions(strategy: "range,roundrobin")
    }

    @Test func cooperativeStickyConsumersSplitThePartitionsIncrementally() async throws {
        try await splitsPartitions(strategy: "cooperative-sticky")
    }

    func splitsPartitions(strategy: String) async throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("split", partitions: 4)
        let producer = try RunningProducer(cluster.bootstrapServers)
        try await producer.produce(40, to: "split")

        var configuration = consumerConfiguration(cluster.bootstrapServers, group: "split-\(strategy)", topics: ["split"])
        configuration.assignmentStrategy = strategy
        let one = try RunningConsumer(configuration)
        let oneReader = Reader(one.consumer)
        let early = try await oneReader.read(1)
        #expect(early.count == 1)
        #expect(one.consumer.assignment.count == 4, "alone in the group, one consumer has every partition")

        let two = try RunningConsumer(configuration)
        let twoReader = Reader(two.consumer)
        // The second member joins when it polls; the first takes part in the rebalance while it polls too (a
        // cooperative rebalance takes two rounds: revoke, then assign).
        // Read until the split has happened (a loaded machine can take well over ten seconds), at most 45 s.
        var fromOne: [KafkaConsumerMessage] = []
        var fromTwo: [KafkaConsumerMessage] = []
        let deadline = ContinuousClock.now + .seconds(45)
        repeat {
            async let drainedOne = oneReader.drain(for: .seconds(3))
            async let drainedTwo = twoReader.drain(for: .seconds(3))
            let (more, others) = try await (drainedOne, drainedTwo)
            fromOne += more
            fromTwo += others
        } while !(one.consumer.assignment.count == 2 && two.consumer.assignment.count == 2 && !fromTwo.isEmpty) && ContinuousClock.now < deadline
        let a = one.consumer.assignment
        let b = two.consumer.assignment
        #expect(a.count == 2 && b.count == 2, "four partitions split two and two: \(a) / \(b)")
        #expect(a.isDisjoint(with: b))
        #expect(a.union(b).count == 4)
        #expect(!fromTwo.isEmpty, "the second member reads from its partitions")
        #expect(Set(fromTwo.map(\.partition)).isSubset(of: Set(b.map(\.partition))))
        #expect(fromOne.count + fromTwo.count + early.count >= 40, "nothing is lost in the rebalance (unstored records may come twice)")

        try await two.stop()
        try await one.stop()
        try await producer.stop()
    }

    @Test func closingWhileRecordsAreInFlightEndsTheSequenceAndLeavesTheGroup() async throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("busy", partitions: 2)
        let producer = try RunningProducer(cluster.bootstrapServers)
        try await producer.produce(2000, to: "busy")

        // A 10 s session: the mock cluster waits a session (less a second) for members to rejoin a rebalance, so a
        // member that left hands its partition over in about 9 s, one that vanished only after 10 s + 9 s.
        var configuration = consumerConfiguration(cluster.bootstrapServers, group: "busy", topics: ["busy"])
        configuration.sessionTimeout = .seconds(10)
        configuration.additionalProperties["max.poll.interval.ms"] = "20000"
        let consumer = try RunningConsumer(configuration)
        let reader = Reader(consumer.consumer)
        let started = try await reader.read(10)
        try consumer.consumer.storeOffset(started[9])
        // A second member shares the partitions.
        let other = try RunningConsumer(configuration)
        let otherReader = Reader(other.consumer)
        let othersReading = Task { try await otherReader.drain(for: .seconds(60)) }
        // Records keep being read while the close happens.
        let reading = Task { try await reader.drain(for: .seconds(60)) }
        #expect(try await eventually(timeout: .seconds(30)) { other.consumer.assignment.count == 1 }, "the group split the two partitions")
        let closeStarted = ContinuousClock.now
        try await consumer.stop()
        let closeTook = ContinuousClock.now - closeStarted
        _ = try await reading.value
        #expect(ContinuousClock.now - closeStarted < .seconds(12), "the record sequence ended with the close, long before its 60 s window")
        #expect(closeTook < .seconds(10), "close took \(closeTook)")

        // The closed member left the group: the other one gets its partition without waiting for a session to expire.
        let handoverStarted = ContinuousClock.now
        #expect(try await eventually(timeout: .seconds(40)) { other.consumer.assignment.count == 2 })
        let handover = ContinuousClock.now - handoverStarted
        #expect(handover < .seconds(14), "the partition moved after \(handover); a vanished member would take 19 s")
        try await other.stop()
        _ = try await othersReading.value
        try await producer.stop()
        withExtendedLifetime((reader, otherReader)) {}
    }

    @Test func droppingTheIteratorClosesTheConsumer() async throws {
        let cluster = try KafkaMockCluster()
        let producer = try RunningProducer(cluster.bootstrapServers)
        try await producer.produce(5, to: "dropped")
        let consumer = try RunningConsumer(consumerConfiguration(cluster.bootstrapServers, group: "dropped", topics: ["dropped"]))
        do {
            var iterator = consumer.consumer.messages.makeAsyncIterator()
            _ = try await iterator.next()
        }
        // The closed consumer hands out nothing more, and run() keeps going until the owner stops it.
        var fresh = consumer.consumer.messages.makeAsyncIterator()
        #expect(try await fresh.next() == nil)
        try await Task.sleep(for: .milliseconds(300))
        #expect(!consumer.task.isCancelled)
        try await consumer.stop()
        try await producer.stop()
    }

    @Test func lagThroughputAndCommitLatencyAreMeasured() async throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("measured", partitions: 1)
        let producer = try RunningProducer(cluster.bootstrapServers)
        try await producer.produce(50, to: "measured")
        let metrics = TestMetrics()
        let consumer = try RunningConsumer(consumerConfiguration(cluster.bootstrapServers, group: "measured", topics: ["measured"]), metrics: metrics)
        let reader = Reader(consumer.consumer)
        let records = try await reader.read(50)
        try consumer.consumer.storeOffset(records[19])
        try await consumer.consumer.commit()
        let lagDimensions = [("group", "measured"), ("topic", "measured"), ("partition", "0")]
        let lagged = try await eventually(timeout: .seconds(10)) {
            (try? metrics.expectGauge("tripline_kafka_consumer_lag", lagDimensions).lastValue) == 30
        }
        #expect(lagged, "50 records, 20 processed: lag 30; recorders: \(metrics.recorders.map { "\($0.label) \($0.dimensions) \($0.lastValue ?? -1)" })")
        #expect(try metrics.expectTimer("tripline_kafka_commit_seconds", [("group", "measured")]).values.count == 1)
        #expect(metrics.counterTotal(label: "tripline_kafka_messages_total") == 50)
        try consumer.consumer.storeOffset(records[49])
        #expect(try await eventually(timeout: .seconds(10)) { (try? metrics.expectGauge("tripline_kafka_consumer_lag", lagDimensions).lastValue) == 0 })
        #expect(try metrics.expectGauge("tripline_kafka_messages_per_second", [("group", "measured")]).values.contains { $0 > 0 })
        try await consumer.stop()
        withExtendedLifetime(reader) {}
        try await producer.stop()
    }

    @Test func aStoppedProducerRefusesRecordsAndALiveOneConfirmsThem() async throws {
        let cluster = try KafkaMockCluster()
        let producer = try RunningProducer(cluster.bootstrapServers)
        let report = try await producer.producer.produce(topic: "confirmed", partition: KafkaPartition(rawValue: 0), key: nil, value: Array("x".utf8))
        #expect(report.partition == KafkaPartition(rawValue: 0))
        #expect(report.offset == 0)
        try await producer.stop()
        await #expect(throws: KafkaError.self) {
            _ = try await producer.producer.produce(topic: "confirmed", key: nil, value: Array("late".utf8))
        }
    }

    @Test func aRefusedPropertyIsNamedWithoutItsValue() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: ["127.0.0.1:1"], groupID: "g", subscription: .topics(["t"]))
        configuration.additionalProperties["sasl.password.typo"] = "hunter2-secret"
        do {
            _ = try KafkaConsumer(configuration: configuration, logger: testLogger("config"), metricsFactory: TestMetrics())
            Issue.record("an unknown property was accepted")
        } catch {
            #expect(error.code == .configuration)
            #expect(error.description.contains("sasl.password.typo"))
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func theLibraryVersionIsKnown() {
        #expect(KafkaLibrary.version.split(separator: ".").count >= 3)
    }
}
