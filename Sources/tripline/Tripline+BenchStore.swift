import ArgumentParser
import Foundation
import Logging
import TriplineCore
import TriplineStorage

#if canImport(Glibc)
import Glibc
#endif

extension Tripline {
    struct StoreBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "store",
            abstract: "How fast the embedded store commits events durably on a disk, without HTTP or the engine.",
            discussion: """
                Writes events through the server's SQLite store (the same schema and indexes, WAL, background \
                checkpoints, the configured synchronous level) in transactions of a given number of events, as the \
                server's commit writer does with the events that arrive while the previous commit syncs. Events look \
                like `bench serve`'s (50 names, 997 resources, ids in arrival order) with a payload of about the given \
                size; 7000 bytes is a GitHub push delivery. Each case starts from a fresh database in --directory \
                (point it at the disk the server's database is on) that is removed afterwards.

                Reported per case (medians of --runs): events and commits per second of the one writing thread; commit \
                time p50/p99 (the sync included); the process's CPU time per event (user and system, the \
                checkpointer included, making the events excluded); bytes handed to write(2) per event (the log and \
                the checkpoint's copy of it). JSON decoding, the engine and HTTP are not part of it: this is the \
                store's share of what a durable event costs in `bench serve` and `bench webhooks`.
                """)

        @Option(help: "Where the databases are created (a fresh one per case, removed afterwards).")
        var directory: String = FileManager.default.temporaryDirectory.path

        @Option(help: "Events per case.")
        var events = 20_000

        @Option(name: .customLong("per-commit"), help: "Comma-separated numbers of events per transaction.")
        var perCommit = "1,12,100"

        @Option(name: .customLong("payload-bytes"), help: "Comma-separated approximate payload sizes in bytes.")
        var payloadBytes = "30,7000"

        @Option(help: "FULL (each commit synced: durable on power loss, what `serve` defaults to) or NORMAL.")
        var synchronous = "FULL"

        @Option(help: "Runs per case; medians are reported.")
        var runs = 3

        func validate() throws {
            guard Self.numbers(perCommit).allSatisfy({ $0 > 0 }), !Self.numbers(perCommit).isEmpty else {
                throw ValidationError("--per-commit needs positive numbers, e.g. 1,12,100 (got '\(perCommit)')")
            }
            guard Self.numbers(payloadBytes).allSatisfy({ $0 >= 0 }), !Self.numbers(payloadBytes).isEmpty else {
                throw ValidationError("--payload-bytes needs sizes in bytes, e.g. 30,7000 (got '\(payloadBytes)')")
            }
            guard ["FULL", "NORMAL"].contains(synchronous.uppercased()) else {
                throw ValidationError("--synchronous must be FULL or NORMAL (got '\(synchronous)')")
            }
            guard events > 0, runs > 0 else { throw ValidationError("--events and --runs must be positive") }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--directory \(directory) is not a folder")
            }
        }

        static func numbers(_ list: String) -> [Int] {
            list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? -1 }
        }

        func run() throws {
            #if DEBUG
            printError("warning: this is a debug build; build with `swift build -c release --static-swift-stdlib` for meaningful numbers")
            #endif
            let level = synchronous.uppercased()
            print("tripline bench store: synchronous=\(level), databases in \(directory), \(events) events per case, median of \(runs) runs")
            let columns = [("payload", 9), ("per commit", 10), ("events/s", 10), ("commits/s", 10), ("commit p50", 11), ("commit p99", 11),
                ("CPU/event", 10), ("written/event", 13)]
            print(columns.map { String(repeating: " ", count: max(0, $0.1 - $0.0.count)) + $0.0 }.joined(separator: " "))
            for size in Self.numbers(payloadBytes) {
                for commitSize in Self.numbers(perCommit) {
                    var results: [Result] = []
                    for run in 0..<runs { results.append(try measure(payload: size, perCommit: commitSize, synchronous: level, run: run)) }
                    func median(_ value: (Result) -> Double) -> Double { results.map(value).sorted()[results.count / 2] }
                    print(
                        String(
                            format: "%7d B %10d %10.0f %10.0f %8.2f ms %8.2f ms %7.1f µs %10.1f KB", size, commitSize, median(\.eventsPerSecond),
                            median(\.commitsPerSecond), median(\.commitP50) * 1000, median(\.commitP99) * 1000, median(\.cpuPerEvent) * 1e6,
                            median(\.writtenPerEvent) / 1024))
                }
            }
        }

        struct Result {
            var eventsPerSecond: Double
            var commitsPerSecond: Double
            var commitP50: Double
            var commitP99: Double
            var cpuPerEvent: Double
            var writtenPerEvent: Double
        }

        /// One case on a fresh database. Events are made a block at a time between commits; the making thread's CPU
        /// time is taken out of the process's, so that what remains is the store's (the writer's and the
        /// checkpointer's).
        func measure(payload: Int, perCommit: Int, synchronous: String, run: Int) throws -> Result {
            let folder = URL(fileURLWithPath: directory).appendingPathComponent("tripline-bench-store-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            var configuration = SQLiteStore.Configuration(path: folder.appendingPathComponent("bench.sqlite").path)
            configuration.synchronous = synchronous
            let store = try SQLiteStore(configuration: configuration, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))

            let padding = String(repeating: "x", count: max(0, payload - 20))
            let occurred = Instant(seconds: Date().timeIntervalSince1970)
            func makeEvent(_ number: Int) -> (Event, String) {
                // Two interleaved id sequences, like two clients each numbering their own events.
                let id = UUID(uuidString: String(format: "%08x-%04x-4000-8000-%012x", run, number % 2, number))!
                let event = Event(
                    id: id, occurred: occurred, event: "bench.event.\(number % 50)", resource: Resource([Resource.idLabel: "bench.r\(number % 997)"]),
                    payload: ["n": .int(Int64(number)), "pad": .string(padding)])
                return (event, event.storageText)
            }

            let blockSize = max(perCommit, (4 << 20) / max(payload + 300, 1) / perCommit * perCommit)
            var commitTimes: [Double] = []
            commitTimes.reserveCapacity(events / perCommit + 1)
            var writing: UInt64 = 0
            var making: Double = 0
            let cpuBefore = Self.processCPUTime()
            let writtenBefore = Self.bytesWritten()
            var number = 0
            while number < events {
                let makingStarted = Self.threadCPUTime()
                let count = min(blockSize, events - number)
                // Split into commits here too, so that the timed part is only the store's.
                let commits = stride(from: number, to: number + count, by: perCommit).map { first in
                    let made = (first..<min(first + perCommit, number + count)).map(makeEvent)
                    return (events: made.map(\.0), encoded: made.map(\.1))
                }
                number += count
                making += Self.threadCPUTime() - makingStarted
                for commit in commits {
                    let began = DispatchTime.now().uptimeNanoseconds
                    _ = try store.writeBlocking { transaction in
                        try transaction.insertEvents(commit.events, encoded: commit.encoded, received: occurred)
                    }
                    let took = DispatchTime.now().uptimeNanoseconds - began
                    writing += took
                    commitTimes.append(Double(took) / 1e9)
                }
            }
            let cpu = Self.processCPUTime() - cpuBefore - making
            let written = Double(Self.bytesWritten() - writtenBefore)
            commitTimes.sort()
            let seconds = Double(writing) / 1e9
            return Result(
                eventsPerSecond: Double(events) / seconds, commitsPerSecond: Double(commitTimes.count) / seconds,
                commitP50: BenchHarness.percentile(commitTimes, 0.5), commitP99: BenchHarness.percentile(commitTimes, 0.99),
                cpuPerEvent: cpu / Double(events), writtenPerEvent: written / Double(events))
        }

        static func processCPUTime() -> Double {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        }

        static func threadCPUTime() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }

        /// Bytes this process handed to write(2) and friends (`wchar` in /proc/self/io; 0 where there is none).
        static func bytesWritten() -> Int {
            // A /proc file reports a size of 0: read it to its end.
            guard let data = FileHandle(forReadingAtPath: "/proc/self/io")?.readDataToEndOfFile() else { return 0 }
            let line = String(decoding: data, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("wchar:") }
            return line.flatMap { Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces)) } ?? 0
        }
    }
}
