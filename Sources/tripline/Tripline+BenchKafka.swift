import ArgumentParser
import Foundation
import Logging
import Metrics
import TriplineKafka

extension Tripline {
    struct KafkaBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kafka",
            abstract: "Kafka → durable event log → engine: fill a topic, start a server with 100 automations reading it, measure the drain.",
            discussion: """
                Without --brokers, the topic lives on librdkafka's mock cluster inside this process (the server connects to \
                it over loopback). Reports: produce rate; events/s from the server's start to the last record stored \
                (durable, synchronous=FULL unless --synchronous NORMAL); consumer lag once drained; the stored count. \
                Build with -c release.
                """)

        @Option(help: "Records in the backlog.") var records = 1_000_000
        @Option(help: "Partitions of the topic (mock cluster only).") var partitions: Int32 = 4
        @Option(help: "Records per durable commit (the source's batch_size).") var batchSize = 500
        @Option(help: "Brokers of a real cluster (host:port,...); the topic must not exist yet or be empty.") var brokers: String?
        @Option(help: "FULL or NORMAL.") var synchronous = "FULL"
        @Option(help: "Port for the server (default: a random free one).") var port: Int?
        @Option(help: "Write the server's log (level info) to this file.") var serverLog: String?

        func run() async throws {
            let port = self.port ?? Self.freePort()
            #if DEBUG
            printError("warning: this is a debug build; build with `swift build -c release` for meaningful numbers")
            #endif
            var logger = Logger(label: "tripline.bench")
            logger.logLevel = .error
            let cluster = brokers == nil ? try KafkaMockCluster(brokers: 1) : nil
            let servers = brokers.map { $0.split(separator: ",").map(String.init) } ?? cluster!.bootstrapServers
            let topic = "bench-\(UUID().uuidString.prefix(8))"
            try cluster?.createTopic(topic, partitions: partitions)

            var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: servers)
            producerConfiguration.linger = .milliseconds(20)
            let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger, metricsFactory: NOOPMetricsHandler.instance)
            let producing = Task { try await producer.run() }
            let produceStarted = ContinuousClock.now
            let window = 10_000
            var next = 0
            while next < records {
                let end = min(records, next + window)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in next..<end {
                        group.addTask { _ = try await producer.produce(topic: topic, key: nil, value: Self.event(index)) }
                    }
                    try await group.waitForAll()
                }
                next = end
            }
            let produceSeconds = seconds(ContinuousClock.now - produceStarted)
            producer.triggerGracefulShutdown()
            try await producing.value
            print("tripline bench kafka: \(records) records on \(brokers == nil ? "librdkafka's mock cluster" : servers.joined(separator: ",")), 100 automations, synchronous=\(synchronous), batch_size=\(batchSize)")
            print(String(format: "produced (acks=all, each confirmed): %.1f s, %.0f records/s", produceSeconds, Double(records) / produceSeconds))

            let work = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-bench-kafka-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work.appendingPathComponent("rules/sources"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            try ServeBench.rules.write(to: work.appendingPathComponent("rules/bench.yaml"), atomically: true, encoding: .utf8)
            try """
                name: bench
                brokers: [\(servers.joined(separator: ", "))]
                topics: [\(topic)]
                group_id: \(topic)
                format: prefect-event
                batch_size: \(batchSize)
                properties:
                  session.timeout.ms: 6000
                  heartbeat.interval.ms: 500
                  max.poll.interval.ms: 10000
                """.write(to: work.appendingPathComponent("rules/sources/bench.yaml"), atomically: true, encoding: .utf8)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            server.arguments = [
                "serve", "--port", String(port), "--database", work.appendingPathComponent("bench.sqlite").path, "--rules",
                work.appendingPathComponent("rules").path, "--log-level", serverLog == nil ? "warning" : "info", "--synchronous", synchronous,
            ]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            if let serverLog {
                FileManager.default.createFile(atPath: serverLog, contents: nil)
                server.standardError = FileHandle(forWritingAtPath: serverLog)
            }
            let drainStarted = ContinuousClock.now
            try server.run()
            defer { server.terminate() }
            var stored = 0
            var lastProgress = ContinuousClock.now
            var first: (time: ContinuousClock.Instant, count: Int)?
            while stored < records {
                try await Task.sleep(for: .milliseconds(200))
                guard server.isRunning else { throw ValidationError("the server exited (status \(server.terminationStatus))") }
                guard let text = try? await get("/metrics", port: port) else { continue }
                let now = metric(text, "tripline_kafka_source_records_total")
                if Int(now) > stored { lastProgress = ContinuousClock.now }
                stored = Int(now)
                if first == nil, stored > 0 { first = (ContinuousClock.now, stored) }
                if ContinuousClock.now - lastProgress > .seconds(60) { throw ValidationError("no progress for 60 s at \(stored) records") }
            }
            let drainSeconds = seconds(ContinuousClock.now - drainStarted)
            let peak = (try? String(contentsOfFile: "/proc/\(server.processIdentifier)/status", encoding: .utf8))?
                .split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.map { $0.dropFirst(6).trimmingCharacters(in: .whitespaces) } ?? "?"
            print(String(format: "drained into the durable log and engine: %.1f s from server start (group join included), %.0f events/s", drainSeconds, Double(records) / drainSeconds))
            if let first {
                let steady = seconds(ContinuousClock.now - first.time)
                print(String(format: "from the first stored batch to the last: %.1f s, %.0f events/s", steady, Double(records - first.count) / steady))
            }
            // The lag gauges refresh every 5 s.
            try await Task.sleep(for: .seconds(6))
            let text = try await get("/metrics", port: port)
            let lag = text.split(separator: "\n").filter { $0.hasPrefix("tripline_kafka_consumer_lag{") }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            print("consumer lag after the drain: \(lag.map { String(Int($0)) }.joined(separator: ", ")) (per partition)")
            print("events stored: \(Int(metric(text, "tripline_events_stored_total"))) (records plus automation events), firings: \(Int(metric(text, "tripline_firings_total")))")
            let batches = metric(text, "tripline_kafka_source_ingest_seconds_count")
            let storeSeconds = metric(text, "tripline_kafka_source_ingest_seconds_sum")
            if batches > 0 {
                print(String(format: "durable commits: %.0f (%.0f records each on average), %.1f s of the drain spent waiting for them", batches, Double(records) / batches, storeSeconds))
            }
            print("server peak RSS: \(peak)")
        }

        static func event(_ index: Int) -> [UInt8] {
            let id = String(format: "%08x-0000-4000-8000-%012x", index >> 16, index)
            return Array(
                #"{"id":"\#(id)","occurred":"2026-11-23T00:00:00Z","event":"bench.event.\#(index % 60)","resource":{"prefect.resource.id":"bench.r\#(index % 997)","tier":"gold"},"payload":{"n":\#(index),"note":"a kafka benchmark record"}}"#
                    .utf8)
        }

        func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }

        func metric(_ text: String, _ name: String) -> Double {
            text.split(separator: "\n").filter { $0.hasPrefix(name + "{") || $0.hasPrefix(name + " ") }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        }

        /// A port nothing listens on now.
        static func freePort() -> Int {
            for _ in 0..<50 {
                let candidate = Int.random(in: 20_000..<60_000)
                let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(socket) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(candidate).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                if bound == 0 { return candidate }
            }
            return 4713
        }

        func get(_ path: String, port: Int) async throws -> String {
            String(decoding: try await HTTPCall.send("GET", "http://127.0.0.1:\(port)\(path)").1, as: UTF8.self)
        }
    }
}
