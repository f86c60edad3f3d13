import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `tripline serve` process started for a test, on a fresh folder and a free port, talked to over real sockets.
final class ServerProcess: @unchecked Sendable {
    // Mutated only by the test that owns it, one step at a time.
    let folder: URL
    /// Picked at random; picked again when another test's server holds it (see `start`).
    private(set) var port: Int
    var process: Process?
    var environment: [String: String] = [:]
    var arguments: [String] = []
    let logFile: URL

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    static var executable: URL? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tripline"),
            repository.appendingPathComponent(".build/debug/tripline"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Creates the folder with `rules` (file name → YAML) and picks a port.
    init(rules: [String: String]) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("rules"), withIntermediateDirectories: true)
        for (name, text) in rules {
            let file = folder.appendingPathComponent("rules/\(name)")
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        // Below Linux's ephemeral range (32768-60999), so that no outgoing connection or port-0 listener of another
        // test can hold the port when the server binds it (or binds it again after a kill).
        port = Self.randomPort()
        logFile = folder.appendingPathComponent("server.log")
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: folder)
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    static func randomPort() -> Int { Int.random(in: 20_000..<32_768) }

    /// Starts the server and waits until `/readyz` answers 200. Tests run in parallel and pick their ports at random,
    /// so when another test's server holds the port the server is started again on another one.
    func start(extraArguments: [String] = []) async throws {
        for attempt in 1...3 {
            if try await launch(extraArguments: extraArguments) { return }
            // Each launch starts the log afresh, so this is the last launch's.
            guard attempt < 3, process?.isRunning == false, log().contains("Address already in use") else { break }
            port = Self.randomPort()
        }
        Issue.record("the server did not become ready; log:\n\(self.log())")
        throw CancellationError()
    }

    /// Runs the server; returns whether it became ready (false when it exited or did not answer within 30 s).
    private func launch(extraArguments: [String]) async throws -> Bool {
        let binary = try #require(Self.executable, "the tripline executable was not built next to the tests; run `swift build` first")
        let process = Process()
        process.executableURL = binary
        process.arguments =
            ["serve", "--port", String(port), "--database", folder.appendingPathComponent("tripline.sqlite").path, "--rules",
             folder.appendingPathComponent("rules").path, "--synchronous", "NORMAL"] + arguments + extraArguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        // Up to 30 s: a loaded machine (CI next to other builds) can take several seconds to start a server.
        // Ready once this process says it listens (another test's server on the same port would answer /readyz too).
        for _ in 0..<600 {
            if !process.isRunning { return false }
            if self.log().contains("listening on"), let (status, _) = try? await request("GET", "/readyz"), status == 200 { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    func stop() async throws {
        guard let process, process.isRunning else { return }
        process.terminate()
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(25)) }
        #expect(!process.isRunning, "the server did not stop on SIGTERM")
        if !process.isRunning { #expect(process.terminationStatus == 0, "SIGTERM is a clean stop: exit status 0\n\(log().suffix(2000))") }
    }

    /// Kills the server with SIGKILL (no chance to flush anything).
    func kill9() async throws {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// Runs the `tripline` command against this server (`TRIPLINE_API_URL` set to it); returns its exit status and
    /// output (stdout and stderr together).
    func command(_ arguments: [String]) throws -> (Int32, String) {
        try Self.command(arguments, environment: ["TRIPLINE_API_URL": "\(baseURL)/api"])
    }

    /// Runs the `tripline` command with `environment` (the test's own when `nil`); returns its exit status and output.
    static func command(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = try #require(executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Sends a request; returns the status and the body.
    func request(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Sends raw bytes with exactly the headers given (plus what HTTP needs).
    func send(_ method: String, _ path: String, body: Data, headers: [String: String]) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.timeoutInterval = 30
        request.httpBody = body
        for (key, value) in headers where key.lowercased() != "content-length" { request.setValue(value, forHTTPHeaderField: key) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// An unlabelled metric's value from `/metrics`, if it is there.
    func metric(_ name: String) async throws -> Double? {
        let text = String(decoding: try await request("GET", "/metrics").1, as: UTF8.self)
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Sends `requests` requests from each of `clients` concurrent clients (`send(client, number)`); returns every
    /// status.
    func concurrently(clients: Int, requests: Int, _ send: @escaping @Sendable (Int, Int) async throws -> Int) async throws -> [Int] {
        try await withThrowingTaskGroup(of: [Int].self) { group in
            for client in 0..<clients {
                group.addTask {
                    var statuses: [Int] = []
                    for number in 0..<requests { statuses.append(try await send(client, number)) }
                    return statuses
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Sends a request and parses the JSON answer.
    func json(_ method: String, _ path: String, json body: String? = nil, headers: [String: String] = [:]) async throws -> (Int, Any) {
        let (status, data) = try await request(method, path, json: body, headers: headers)
        return (status, (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) ?? NSNull())
    }
}

/// Builds event JSON for the tests.
enum TestEvent {
    static func id(_ number: Int) -> String { "00000000-0000-4000-8000-" + String(format: "%012d", number) }

    static func json(_ number: Int, _ name: String, occurred: Date = Date(), resource: String = "test.resource", labels: [String: String] = [:])
        -> [String: Any]
    {
        var resourceLabels: [String: Any] = ["prefect.resource.id": resource]
        for (key, value) in labels { resourceLabels[key] = value }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return ["id": id(number), "occurred": formatter.string(from: occurred), "event": name, "resource": resourceLabels, "related": [], "payload": [:]]
    }

    static func array(_ events: [[String: Any]]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: events), as: UTF8.self)
    }
}
