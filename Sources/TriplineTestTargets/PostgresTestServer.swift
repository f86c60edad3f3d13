import Foundation

/// A real PostgreSQL for the tests: the server named by `TRIPLINE_TEST_POSTGRES_URL`, or else a throwaway one this test
/// process starts itself (initdb + pg_ctl from the installed PostgreSQL, as the postgres user when running as root) and
/// stops at exit. Each test gets a database of its own.
///
/// When neither is possible the PostgreSQL variants of the tests are skipped — unless `TRIPLINE_REQUIRE_POSTGRES=1`
/// (CI sets it), which turns that into a failure.
public enum PostgresTestServer {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    nonisolated(unsafe) static var stopCommand: [String] = []
    nonisolated(unsafe) static var stopFolder: String?

    /// The server's base URL (database `postgres`), started on first use.
    public static let base: Result<String, Unavailable> = start()

    /// Whether the PostgreSQL variants run.
    public static var enabled: Bool {
        if case .success = base { return true }
        return ProcessInfo.processInfo.environment["TRIPLINE_REQUIRE_POSTGRES"] == "1"
    }

    /// A URL to a new, empty database.
    public static func freshDatabase() throws -> String {
        let url = try base.get()
        let name = "tripline_test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let created = run("/usr/bin/env", ["psql", url.components(separatedBy: "?")[0], "-q", "-c", "CREATE DATABASE \(name)"])
        guard created.0 == 0 else { throw Unavailable(description: "CREATE DATABASE failed: \(created.1.suffix(300))") }
        return url.replacingOccurrences(of: "/postgres?", with: "/\(name)?")
    }

    private static func start() -> Result<String, Unavailable> {
        if let url = ProcessInfo.processInfo.environment["TRIPLINE_TEST_POSTGRES_URL"] {
            var components = URLComponents(string: url)
            components?.path = "/postgres"
            if components?.queryItems == nil { components?.queryItems = [URLQueryItem(name: "sslmode", value: "disable")] }
            return components?.string.map { .success($0) } ?? .failure(Unavailable(description: "TRIPLINE_TEST_POSTGRES_URL is not a URL"))
        }
        let binaries = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .sorted { $0.compare($1, options: .numeric) == .orderedAscending }
            .map { "/usr/lib/postgresql/\($0)/bin" }
            .last { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
        guard let bin = binaries else {
            return .failure(Unavailable(description: "no PostgreSQL found: install postgresql or set TRIPLINE_TEST_POSTGRES_URL"))
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-pg-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let asRoot = getuid() == 0
        if asRoot { _ = run("/bin/chown", ["postgres", folder]) }
        func asOwner(_ tool: String, _ arguments: [String]) -> (Int32, String) {
            asRoot ? run("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(tool)"] + arguments) : run("\(bin)/\(tool)", arguments)
        }
        let initialized = asOwner("initdb", ["-D", "\(folder)/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        guard initialized.0 == 0 else { return .failure(Unavailable(description: "initdb failed: \(initialized.1.suffix(500))")) }
        for attempt in 0..<5 {
            let port = Int.random(in: 20_000...60_000)
            let started = asOwner(
                "pg_ctl",
                [
                    "-D", "\(folder)/data", "-l", "\(folder)/log", "-w", "-o",
                    "-p \(port) -k \(folder) -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                    "start",
                ])
            if started.0 == 0 {
                stopCommand = asRoot
                    ? ["/usr/sbin/runuser", "-u", "postgres", "--", "\(bin)/pg_ctl", "-D", "\(folder)/data", "-m", "immediate", "stop"]
                    : ["\(bin)/pg_ctl", "-D", "\(folder)/data", "-m", "immediate", "stop"]
                stopFolder = folder
                atexit {
                    let command = PostgresTestServer.stopCommand
                    if let tool = command.first { PostgresTestServer.run(tool, Array(command.dropFirst())) }
                    if let folder = PostgresTestServer.stopFolder { try? FileManager.default.removeItem(atPath: folder) }
                }
                return .success("postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable")
            }
            if attempt == 4 { return .failure(Unavailable(description: "pg_ctl start failed: \(started.1.suffix(500))")) }
        }
        return .failure(Unavailable(description: "PostgreSQL did not start"))
    }

    /// Runs a command through the shell, its output in a file (a pipe would stay open: the server pg_ctl starts inherits
    /// the descriptors), and waits for it with `system`, which reaps the child itself.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) -> (Int32, String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-pg-output-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = ([tool] + arguments).map(quoted).joined(separator: " ") + " </dev/null >\(quoted(outputPath)) 2>&1"
        let status = system(command)
        let data = FileManager.default.contents(atPath: outputPath) ?? Data()
        return (status == 0 ? 0 : max(status, 1), String(decoding: data, as: UTF8.self))
    }
}

