import ArgumentParser
import Foundation
import TriplineCore

/// What the HTTP benchmarks share: a server started from this executable on a fresh database in a scratch folder,
/// wrk runs against it, plain requests from this process, and the server's peak memory.
struct BenchHarness {
    let port: Int
    let connections: Int
    let duration: Int
    let work: URL
    private(set) var server: Process?

    init(port: Int, connections: Int, duration: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw ValidationError("wrk is not installed (apt-get install wrk)")
        }
        #if DEBUG
        printError("warning: this is a debug build; build with `swift build -c release --static-swift-stdlib` for meaningful numbers")
        #else
        if Self.loadsSharedSwiftRuntime {
            printError(
                "note: this build loads the Swift runtime from shared libraries; the container and systemd builds link it "
                    + "statically (swift build -c release --static-swift-stdlib), as the README's numbers do: less memory, more requests/s")
        }
        #endif
        self.port = port
        self.connections = connections
        self.duration = duration
        work = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work.appendingPathComponent("rules"), withIntermediateDirectories: true)
    }

    /// Whether this process (and so the server it starts) maps the Swift runtime as a shared library.
    static var loadsSharedSwiftRuntime: Bool {
        // A /proc file reports a size of 0, and `String(contentsOfFile:)` then returned only the start of this long
        // one: read to the end instead.
        guard let maps = FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() else { return false }
        return String(decoding: maps, as: UTF8.self).contains("/libswiftCore.so")
    }

    /// Writes a file under the scratch folder (rules, wrk scripts, bodies).
    func write(_ text: String, to relativePath: String) throws -> URL {
        let file = work.appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Starts `tripline serve` with the benchmark routes on and waits for /readyz.
    /// - Returns: The time from launch to ready.
    mutating func startServer(environment: [String: String] = [:]) async throws -> TimeInterval {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        server.arguments = [
            "serve", "--port", String(port), "--database", work.appendingPathComponent("bench.sqlite").path, "--rules",
            work.appendingPathComponent("rules").path, "--log-level", "warning",
        ]
        server.environment = ProcessInfo.processInfo.environment.merging(environment.merging(["TRIPLINE_BENCH_ROUTES": "1"]) { $1 }) { $1 }
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        let begin = Date()
        try server.run()
        self.server = server
        for _ in 0..<400 {
            if (try? await status("GET", "/readyz")) == 200 { return Date().timeIntervalSince(begin) }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw ValidationError("the server did not start")
    }

    /// Stops the server and removes the scratch folder.
    func finish() {
        server?.terminate()
        server?.waitUntilExit()
        try? FileManager.default.removeItem(at: work)
    }

    /// Runs wrk with `script` for the configured duration.
    /// - Returns: Requests per second.
    func runWrk(script: String, name: String, arguments: [String] = []) throws -> Double {
        let file = try write(script, to: "\(name).lua")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["-t2", "-c\(connections)", "-d\(duration)s", "-s", file.path, "http://127.0.0.1:\(port)", "--"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if output.contains("Non-2xx") { printError("warning: wrk saw non-2xx answers:\n\(output)") }
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
            let value = Double(line.split(separator: " ").last ?? "")
        else { throw ValidationError("cannot read wrk's output:\n\(output)") }
        return value
    }

    /// Runs wrk with one connection (each request waits for the answer to the one before) and reads its latency
    /// distribution (wrk keeps an HdrHistogram).
    /// - Returns: The median and the 99th percentile, in milliseconds, and how many requests were measured.
    func runWrkLatency(script: String, name: String, seconds: Int, arguments: [String] = []) throws -> (p50: Double, p99: Double, requests: Int) {
        let file = try write(script, to: "\(name).lua")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["-t1", "-c1", "-d\(seconds)s", "--latency", "-s", file.path, "http://127.0.0.1:\(port)", "--"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if output.contains("Non-2xx") { throw ValidationError("wrk saw non-2xx answers:\n\(output)") }
        func percentile(_ label: String) -> Double? {
            guard let line = output.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label + " ") }),
                let text = line.split(separator: " ").last
            else { return nil }
            for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(unit) {
                return Double(text.dropLast(unit.count)).map { $0 * scale }
            }
            return nil
        }
        let requests = output.split(separator: "\n").first(where: { $0.contains("requests in") })
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") } ?? 0
        guard let p50 = percentile("50%"), let p99 = percentile("99%") else { throw ValidationError("cannot read wrk's latency distribution:\n\(output)") }
        return (p50, p99, requests)
    }

    func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = ["Content-Type": "application/json"]) async throws -> (Int, Data) {
        try await HTTPCall.send(method, "http://127.0.0.1:\(port)\(path)", headers: body == nil ? [] : headers.map { ($0.key, $0.value) }, body: body)
    }

    func status(_ method: String, _ path: String, body: String? = nil) async throws -> Int {
        try await request(method, path, body: body.map { Data($0.utf8) }).0
    }

    /// The server's peak resident memory in KiB.
    var peakRSS: Int {
        guard let pid = server?.processIdentifier, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    /// The server's resident memory now, split into mapped files (the binary's and libraries' code and data, shared
    /// with the page cache) and anonymous memory (heap, stacks), in KiB.
    var residentSplit: (files: Int, anonymous: Int) {
        guard let pid = server?.processIdentifier, let rollup = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else {
            return (0, 0)
        }
        func value(_ name: String) -> Int {
            guard let line = rollup.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        let rss = value("Rss")
        let anonymous = value("Anonymous")
        return (rss - anonymous, anonymous)
    }

    /// A line for the benchmarks' reports: peak RSS, and what the memory is now.
    var memoryReport: String {
        let split = residentSplit
        return String(
            format: "server peak RSS:                         %.1f MB (at the end: %.1f MB mapped code and data, %.1f MB anonymous)",
            Double(peakRSS) / 1024, Double(split.files) / 1024, Double(split.anonymous) / 1024)
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}
