import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TriplineCore
import TriplineStorage

extension Tripline {
    struct ActionsBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "actions",
            abstract: "Measure the action layer: firings dispatched per second to a local webhook sink, and event → action latency.",
            discussion: """
                Starts `tripline serve` (synchronous=FULL, fresh database) with one automation that fires on every \
                event and calls a webhook on a sink in this process. Every action goes through the durable outbox, \
                gets an attempt record, and emits its two action events into the log. Reports, per run: event → \
                action latency p50/p99 with no other load (one event at a time, 5 ms apart, the time from the POST to the \
                sink receiving the call), and actions per second with events posted in batches of 100 (from the first POST \
                until the sink has received every call), with the latency under that load. Build with -c release.
                """)

        @Option(help: "Runs; the median of each measure is reported.") var runs = 3
        @Option(help: "Events per throughput run.") var events = 20_000
        @Option(help: "Latency samples per run.") var samples = 300
        @Option(help: "Port for the server.") var port = 4712

        func run() async throws {
            #if DEBUG
            printError("warning: this is a debug build; build with `swift build -c release` for meaningful numbers")
            #endif
            let sink = BenchSink()
            try await sink.start()
            print("tripline bench actions: call-webhook to a local sink, synchronous=FULL, \(events) events per throughput run, \(samples) latency samples, \(runs) runs")
            var rates: [Double] = []
            var unloaded50: [Double] = []
            var unloaded99: [Double] = []
            var loaded50: [Double] = []
            var loaded99: [Double] = []
            for run in 1...runs {
                let result = try await measure(run: run, sink: sink)
                rates.append(result.rate)
                unloaded50.append(result.unloaded.p50)
                unloaded99.append(result.unloaded.p99)
                loaded50.append(result.loaded.p50)
                loaded99.append(result.loaded.p99)
                print(
                    String(
                        format: "run %d: %7.0f actions/s; event → action unloaded p50 %.2f ms p99 %.2f ms; under load p50 %.1f ms p99 %.1f ms; %d attempt records",
                        run, result.rate, result.unloaded.p50, result.unloaded.p99, result.loaded.p50, result.loaded.p99, result.attempts))
            }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            print(
                String(
                    format: "median: %.0f actions/s; unloaded p50 %.2f ms, p99 %.2f ms; under load p50 %.1f ms, p99 %.1f ms", median(rates),
                    median(unloaded50), median(unloaded99), median(loaded50), median(loaded99)))
            sink.stop()
        }

        struct Result {
            var rate: Double
            var unloaded: (p50: Double, p99: Double)
            var loaded: (p50: Double, p99: Double)
            var attempts: Int
        }

        func measure(run: Int, sink: BenchSink) async throws -> Result {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-bench-actions-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: work.appendingPathComponent("rules/destinations"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            try """
                destinations:
                  sink:
                    type: webhook
                    url: http://127.0.0.1:\(sink.port)/hook
                    allow_private_network: true
                """.write(to: work.appendingPathComponent("rules/destinations/sink.yaml"), atomically: true, encoding: .utf8)
            try """
                name: bench action
                trigger: {type: event, posture: Reactive, expect: [bench.action], threshold: 1, within: 0}
                actions:
                  - type: call-webhook
                    destination: sink
                    payload: "{{ event.id }}"
                """.write(to: work.appendingPathComponent("rules/bench.yaml"), atomically: true, encoding: .utf8)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            server.arguments = [
                "serve", "--port", String(port), "--database", work.appendingPathComponent("bench.sqlite").path, "--rules",
                work.appendingPathComponent("rules").path, "--log-level", "error",
            ]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            defer {
                if server.isRunning {
                    server.terminate()
                    server.waitUntilExit()
                }
            }
            var ready = false
            for _ in 0..<400 {
                if (try? await post("/readyz", body: nil, method: "GET")) == 200 {
                    ready = true
                    break
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            guard ready else { throw ValidationError("the server did not start") }
            sink.reset()

            // Unloaded: one event at a time, waiting for its call at the sink, then 5 ms for the server to record the
            // result, so that no sample competes with the previous one's work.
            var unloaded: [Double] = []
            for number in 0..<samples {
                try await Task.sleep(for: .milliseconds(5))
                let id = Self.id(run: run, number: number)
                let sent = DispatchTime.now().uptimeNanoseconds
                sink.expect(id, sent: sent)
                guard try await post("/api/events", body: "[\(Self.event(id))]") == 204 else { throw ValidationError("posting an event failed") }
                let arrived = try await sink.wait(for: id)
                unloaded.append(Double(arrived - sent) / 1e6)
            }

            // Throughput: batches of 100 from 4 concurrent posters.
            let base = 1_000_000
            sink.countArrivals(from: base)
            let batches = events / 100
            let started = DispatchTime.now().uptimeNanoseconds
            try await withThrowingTaskGroup(of: Void.self) { group in
                for poster in 0..<4 {
                    group.addTask {
                        for batch in stride(from: poster, to: batches, by: 4) {
                            let ids = (0..<100).map { Self.id(run: run, number: base + batch * 100 + $0) }
                            let sent = DispatchTime.now().uptimeNanoseconds
                            for id in ids { sink.expect(id, sent: sent) }
                            let body = "[" + ids.map(Self.event).joined(separator: ",") + "]"
                            guard try await self.post("/api/events", body: body) == 204 else { throw ValidationError("posting a batch failed") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let deadline = Date().addingTimeInterval(120)
            while sink.arrivedCount(from: base) < batches * 100, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let finished = sink.lastArrival(from: base)
            guard sink.arrivedCount(from: base) == batches * 100 else { throw ValidationError("not every action arrived within 120 s") }
            let rate = Double(batches * 100) / (Double(finished - started) / 1e9)
            let loaded = sink.latencies(from: base)
            // Stop the server (SIGTERM: it records what is in flight) and count the attempt records it left.
            server.terminate()
            server.waitUntilExit()
            let store = try SQLiteStore(
                configuration: SQLiteStore.Configuration(path: work.appendingPathComponent("bench.sqlite").path),
                logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
            let attempts = try await store.count(table: "delivery_attempts")
            return Result(rate: rate, unloaded: percentiles(unloaded), loaded: percentiles(loaded), attempts: attempts)
        }

        func percentiles(_ values: [Double]) -> (p50: Double, p99: Double) {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return (0, 0) }
            return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))])
        }

        static func id(run: Int, number: Int) -> String { String(format: "00000000-0000-4000-b%03d-%012d", run, number) }

        static func event(_ id: String) -> String {
            #"{"id":"\#(id)","occurred":"\#(Instant(seconds: Date().timeIntervalSince1970).rfc3339)","event":"bench.action","resource":{"prefect.resource.id":"bench.r"}}"#
        }

        func post(_ path: String, body: String?, method: String = "POST") async throws -> Int {
            try await HTTPCall.send(method, "http://127.0.0.1:\(port)\(path)", headers: body == nil ? [] : [("Content-Type", "application/json")], body: body.map { Data($0.utf8) }).0
        }
    }
}

/// The benchmark's webhook sink: answers 204 and notes when each event's call arrived.
final class BenchSink: Sendable {
    struct State {
        var sent: [String: UInt64] = [:]
        var arrived: [String: UInt64] = [:]
        var waiters: [String: CheckedContinuation<UInt64, Never>] = [:]
        /// Arrivals of the throughput run (ids numbered from `base`), counted as they come so that waiting for them
        /// costs the benchmark process nothing.
        var base = Int.max
        var throughputArrived = 0
        var lastArrival: UInt64 = 0
    }

    let state = Mutex(State())
    let portBox = Mutex<Int?>(nil)
    let task = Mutex<Task<Void, any Error>?>(nil)

    var port: Int { portBox.withLock { $0 ?? 0 } }

    func start() async throws {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = String(buffer: try await request.collectBody(upTo: 4096))
            self.arrived(body.trimmingCharacters(in: .whitespacesAndNewlines))
            return Response(status: .noContent)
        }
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in self.portBox.withLock { $0 = channel.localAddress?.port } },
            logger: Logger(label: "sink", factory: { _ in SwiftLogNoOpLogHandler() }))
        task.withLock { $0 = Task { try await app.run() } }
        for _ in 0..<400 where portBox.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
    }

    func stop() { task.withLock { $0?.cancel() } }

    func reset() { state.withLock { $0 = State() } }

    func expect(_ id: String, sent: UInt64) { state.withLock { $0.sent[id] = sent } }

    func arrived(_ id: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        let waiter = state.withLock { state -> CheckedContinuation<UInt64, Never>? in
            if state.arrived[id] == nil {
                state.arrived[id] = now
                if let number = Int(id.suffix(12)), number >= state.base {
                    state.throughputArrived += 1
                    state.lastArrival = now
                }
            }
            return state.waiters.removeValue(forKey: id)
        }
        waiter?.resume(returning: now)
    }

    func wait(for id: String) async throws -> UInt64 {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> UInt64? in
                if let time = state.arrived[id] { return time }
                state.waiters[id] = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Starts counting the arrivals of ids numbered from `base`.
    func countArrivals(from base: Int) { state.withLock { $0.base = base } }

    /// Arrivals of the throughput run.
    func arrivedCount(from base: Int) -> Int { state.withLock { $0.throughputArrived } }

    func lastArrival(from base: Int) -> UInt64 { state.withLock { $0.lastArrival } }

    func latencies(from base: Int) -> [Double] {
        state.withLock { state in
            state.arrived.compactMap { id, arrived -> Double? in
                guard let number = Int(id.suffix(12)), number >= base, let sent = state.sent[id] else { return nil }
                return Double(arrived - sent) / 1e6
            }
        }
    }
}
