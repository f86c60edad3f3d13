import ArgumentParser
import Foundation
import TriplineCore

extension Tripline {
    struct ServeBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Start a server with 100 automations on a fresh database and measure it over HTTP from this process and wrk.",
            discussion: """
                Needs wrk (apt-get install wrk). Reports: the HTTP ceiling (a route that reads the body and answers 204 \
                without storing); single events checked as ingest does (scope, JSON, decoding, serializing) but not \
                stored, which leaves the commit writer's share; durable single-event and batched (100) ingest; event → \
                firing latency p50/p99 unloaded and under load (wrk's HdrHistogram over one connection posting a probe \
                event every 5 ms; the firing is committed with the event, so the POST's answer marks it); proactive \
                lateness; peak RSS; start-up time. Build with -c release.
                """)

        @Option(help: "Seconds per wrk run.") var duration = 10
        @Option(help: "Concurrent connections for wrk.") var connections = 32
        @Option(help: "Seconds per latency measurement.") var latencySeconds = 3
        @Option(help: "Port for the server.") var port = 4711

        func run() async throws {
            var harness = try BenchHarness(port: port, connections: connections, duration: duration)
            defer { harness.finish() }
            _ = try harness.write(Self.rules, to: "rules/bench.yaml")
            let startup = try await harness.startServer()
            print("tripline bench serve: 100 automations, fresh SQLite database (synchronous=FULL), \(connections) connections, \(duration) s per run")
            print(String(format: "start-up (process launch to /readyz 200): %.0f ms", startup * 1000))
            let idle = harness.residentSplit
            print(String(format: "RSS after start-up:                      %.1f MB (%.1f MB mapped code and data, %.1f MB anonymous)",
                Double(idle.files + idle.anonymous) / 1024, Double(idle.files) / 1024, Double(idle.anonymous) / 1024))

            let ceiling = try harness.runWrk(script: Self.wrkScript(path: "/api/bench/noop", batch: 1), name: "run1", arguments: ["1"])
            let parsed = try harness.runWrk(script: Self.wrkScript(path: "/api/bench/parse", batch: 1), name: "run5", arguments: ["5"])
            let single = try harness.runWrk(script: Self.wrkScript(path: "/api/events", batch: 1), name: "run2", arguments: ["2"])
            let batched = try harness.runWrk(script: Self.wrkScript(path: "/api/events", batch: 100), name: "run3", arguments: ["3"])
            print(String(format: "HTTP ceiling (no-op route, same body):   %8.0f requests/s", ceiling))
            print(String(format: "single events checked, not stored:       %8.0f events/s  (%.0f%% of the ceiling)", parsed, parsed / ceiling * 100))
            print(String(format: "durable single-event POSTs:              %8.0f events/s  (%.0f%% of the ceiling)", single, single / ceiling * 100))
            print(String(format: "durable batches of 100:                  %8.0f events/s", batched * 100))

            // Latency: one connection posting probe events one at a time (each fires an automation; the firing commits
            // with the event, so the answer marks it), alone and next to a wrk load on half the connections.
            let probe = Self.latencyScript
            // The loads above leave the database's log to be copied into the file (a few seconds of background I/O);
            // unloaded means after that.
            try await Task.sleep(for: .seconds(3))
            let unloaded = try harness.runWrkLatency(script: probe, name: "latency-alone", seconds: latencySeconds, arguments: ["1"])
            print(String(format: "event → firing latency, unloaded:        p50 %.2f ms, p99 %.2f ms (%d events)", unloaded.p50, unloaded.p99, unloaded.requests))
            let load = Process()
            load.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
            let script = try harness.write(Self.wrkScript(path: "/api/events", batch: 1), to: "load.lua")
            load.arguments = ["-t2", "-c\(connections / 2)", "-d\(latencySeconds + 2)s", "-s", script.path, "http://127.0.0.1:\(port)", "--", "4"]
            load.standardOutput = FileHandle.nullDevice
            try load.run()
            try await Task.sleep(for: .seconds(1))
            let loaded = try harness.runWrkLatency(script: probe, name: "latency-loaded", seconds: latencySeconds, arguments: ["2"])
            load.waitUntilExit()
            print(String(format: "event → firing latency, under load:      p50 %.2f ms, p99 %.2f ms (%d events)", loaded.p50, loaded.p99, loaded.requests))

            let lateness = try await proactiveLateness(harness)
            print(String(format: "proactive lateness (3 windows of 10 s):  max %.0f ms", lateness * 1000))
            print(harness.memoryReport)
        }

        // MARK: - Load

        static func wrkScript(path: String, batch: Int) -> String {
            """
            local threads = 0
            function setup(thread) thread:set("tid", threads); threads = threads + 1 end
            function init(args) run = tonumber(args[1]) or 0; counter = 0 end
            function request()
              local parts = {}
              for i = 1, \(batch) do
                counter = counter + 1
                local id = string.format("%08x-%04x-4000-8000-%012x", run, tid, counter)
                parts[i] = '{"id":"' .. id .. '","occurred":"2026-01-01T00:00:00Z","event":"bench.event.' .. (counter % 50) ..
                  '","resource":{"prefect.resource.id":"bench.r' .. (counter % 997) .. '"},"payload":{"n":' .. counter .. '}}'
              end
              return wrk.format("POST", "\(path)", {["Content-Type"] = "application/json"}, "[" .. table.concat(parts, ",") .. "]")
            end
            """
        }

        // MARK: - Latency

        /// Posts one `bench.latency` event per request (the probe automation fires on each), 5 ms after the answer to
        /// the one before, so that each probe's firing and its action are done before the next probe.
        static let latencyScript = """
            function init(args) run = tonumber(args[1]) or 0; counter = 0 end
            function delay() return 5 end
            function request()
              counter = counter + 1
              local id = string.format("00000000-%04x-4000-9000-%012x", run, counter)
              return wrk.format("POST", "/api/events", {["Content-Type"] = "application/json"},
                '[{"id":"' .. id .. '","occurred":"2026-01-01T00:00:00Z","event":"bench.latency","resource":{"prefect.resource.id":"bench.latency"}}]')
            end
            """

        func proactiveLateness(_ harness: BenchHarness) async throws -> Double {
            let opened = Date()
            let occurred = Instant(seconds: opened.timeIntervalSince1970)
            var events: [String] = []
            for key in 0..<3 {
                let id = String(format: "00000000-0000-4000-a000-%012d", key)
                events.append(#"{"id":"\#(id)","occurred":"\#(occurred.rfc3339)","event":"bench.job.started","resource":{"prefect.resource.id":"bench.job.\#(key)"}}"#)
            }
            _ = try await harness.status("POST", "/api/events", body: "[" + events.joined(separator: ",") + "]")
            let deadline = opened.addingTimeInterval(10)
            var seen = Set<String>()
            var latest = 0.0
            while seen.count < 3, Date().timeIntervalSince(deadline) < 5 {
                let (_, data) = try await harness.request("GET", "/api/firings?limit=100")
                if let firings = try? JSONValue.parse(data), case .array(let list) = firings {
                    for firing in list where firing["automation"]?.stringValue == "bench: job not finished within 10 s" {
                        if let id = firing["id"]?.stringValue, seen.insert(id).inserted { latest = max(latest, Date().timeIntervalSince(deadline)) }
                    }
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            guard seen.count == 3 else { throw ValidationError("the proactive firings did not arrive within 5 s of their deadline") }
            return latest
        }

        /// 100 automations: 89 reactive over the benchmark's event names, 10 proactive, and one immediate one whose
        /// firing the latency measurement waits for.
        static var rules: String {
            var text = """
                - name: "bench: latency probe"
                  trigger: {type: event, posture: Reactive, expect: [bench.latency]}
                  actions: [{type: do-nothing}]
                - name: "bench: job not finished within 10 s"
                  trigger: {type: event, posture: Proactive, after: [bench.job.started], expect: [bench.job.finished], for_each: [prefect.resource.id], within: 10}
                  actions: [{type: do-nothing}]

                """
            for index in 0..<89 {
                text += """
                    - name: "bench: reactive \(index)"
                      trigger: {type: event, posture: Reactive, expect: ["bench.event.\(index % 50)"], match: {prefect.resource.id: "bench.r\(index * 11 % 997)"}, for_each: [prefect.resource.id], threshold: \(1 + index % 3), within: 60}
                      actions: [{type: do-nothing}]

                    """
            }
            for index in 0..<9 {
                text += """
                    - name: "bench: quiet resource \(index)"
                      trigger: {type: event, posture: Proactive, expect: ["bench.event.\(index)"], for_each: [prefect.resource.id], threshold: 1, within: 300}
                      actions: [{type: do-nothing}]

                    """
            }
            return text
        }
    }
}
