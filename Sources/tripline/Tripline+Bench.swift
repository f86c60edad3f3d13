import ArgumentParser
import Foundation
import TriplineCore

#if canImport(Glibc)
import Glibc
#endif

extension Tripline {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Benchmarks (build with -c release for meaningful numbers).",
            subcommands: [EngineBench.self, ServeBench.self, WebhooksBench.self, ActionsBench.self, KafkaBench.self, StoreBench.self])
    }

    struct EngineBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "engine",
            abstract: "Events per second through the trigger engine and peak memory, for several automation counts.",
            discussion: """
                The workload mixes seven kinds of automations (flow failures per deployment, push to main with a payload \
                predicate, S3 prefix, per-run SLA and per-host heartbeat (proactive), Stripe failures per customer, a \
                wildcard on crashes). 60% of events interest no trigger; the rest interest one or a few. Events are \
                generated in chunks outside the timed section; the timed section is the engine's work (causal \
                ordering, dedup, index lookup, matching, buckets, proactive evaluations on event time). Each size runs \
                in its own process so that peak memory is its own.
                """)

        @Option(help: "Comma-separated automation counts.")
        var automations = "10,1000,10000"

        @Option(help: "Events per run.")
        var events = 1_000_000

        @Option(help: "Runs per size; the median is reported.")
        var runs = 5

        @Option(help: ArgumentHelp("Run one size in this process and print a JSON result.", visibility: .hidden))
        var single: Int?

        func run() throws {
            if let single {
                print(measure(automationCount: single).jsonText)
                return
            }
            let sizes = automations.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty else { throw ValidationError("--automations needs at least one number") }
            #if DEBUG
            printError("warning: this is a debug build; build with `swift build -c release` for meaningful numbers")
            #endif
            print("tripline bench engine: \(events) events per run, median of \(runs) runs, one process per size")
            print(String(format: "%12@ %10@ %14@ %12@ %12@ %10@", "automations", "triggers", "events/s", "ns/event", "firings/run", "peak RSS"))
            var results: [(Int, Double)] = []
            for size in sizes {
                let result = try runChild(size)
                guard let rate = result["events_per_second"]?.number, let rss = result["peak_rss_mib"]?.number,
                    let firings = result["firings_per_run"]?.number, let triggers = result["event_triggers"]?.number
                else { throw ValidationError("the benchmark child printed no result") }
                results.append((size, 1e9 / rate))
                print(
                    String(
                        format: "%12d %10d %14.0f %12.0f %12.0f %7.0f MiB", size, Int(triggers), rate, 1e9 / rate, firings, rss))
            }
            if let first = results.first, let last = results.last, results.count > 1 {
                print(String(format: "per-event cost at %d automations / at %d: %.2fx", last.0, first.0, last.1 / first.1))
            }
        }

        private func runChild(_ size: Int) throws -> JSONValue {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            if !FileManager.default.fileExists(atPath: process.executableURL!.path) {
                process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            }
            process.arguments = ["bench", "engine", "--single", String(size), "--events", String(events), "--runs", String(runs)]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("the benchmark for \(size) automations failed") }
            return try JSONValue.parse(data)
        }

        private func measure(automationCount: Int) -> JSONValue {
            let chunk = 50_000
            var rates: [Double] = []
            var firings = 0
            var triggers = 0
            for run in 0...runs {
                var workload = EngineWorkload(automationCount: automationCount)
                var configuration = EngineConfiguration()
                configuration.deduplicationHorizon = .minutes(30)
                let engine = Engine(automations: workload.automations, store: InMemoryBucketStore(), configuration: configuration)
                triggers = engine.eventTriggerCount
                var replay = TriplineCore.Replay(engine: engine)
                var elapsed: UInt64 = 0
                var fired = 0
                var remaining = events
                while remaining > 0 {
                    let batch = workload.nextEvents(min(chunk, remaining))
                    remaining -= batch.count
                    let begin = DispatchTime.now().uptimeNanoseconds
                    for event in batch { fired += replay.feed(event).count }
                    elapsed += DispatchTime.now().uptimeNanoseconds - begin
                }
                if run > 0 { rates.append(Double(events) / (Double(elapsed) / 1e9)) }  // run 0 warms up
                firings = fired
            }
            rates.sort()
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return .object([
                "automations": .int(Int64(automationCount)),
                "event_triggers": .int(Int64(triggers)),
                "events_per_second": .double(rates[rates.count / 2]),
                "firings_per_run": .int(Int64(firings)),
                "peak_rss_mib": .double(Double(usage.ru_maxrss) / 1024),
            ])
        }
    }
}
