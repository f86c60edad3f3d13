import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import TriplineCore
import TriplineServer

extension Tripline {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the Tripline service: event API, automations API, live feed, trigger engine, actions; on an embedded SQLite database, or on PostgreSQL shared with other tripline processes (--database-url).",
            discussion: """
                Settings come from flags, then environment variables, then the config file (--config / TRIPLINE_CONFIG, \
                YAML with the keys host, port, database, database_url, synchronous, rules, runs, retention, max_body_size, \
                ingest_budget, api_tokens_file, log_level, log_format), then defaults. Prefect clients work with PREFECT_API_URL=http://HOST:PORT/api.

                API tokens: TRIPLINE_API_TOKENS_FILE names a file with one token per line, `<ingest|read|admin> <token> \
                [name]` (blank lines and # comments allowed; tokens of at least 16 characters). Without tokens the server \
                only listens on loopback. Send `Authorization: Bearer <token>`, or Prefect's PREFECT_API_AUTH_STRING \
                (`user:<token>`), or PREFECT_API_KEY=<token>.

                Rules are reloaded on SIGHUP and when the rules folder changes; an invalid folder keeps the running rules. \
                SIGTERM / SIGINT stop gracefully.
                """)

        @Option(help: "Address to listen on (TRIPLINE_HOST; default 127.0.0.1).") var host: String?
        @Option(help: "Port (TRIPLINE_PORT; default 4200).") var port: Int?
        @Option(help: "SQLite database file (TRIPLINE_DATABASE; default tripline.sqlite).") var database: String?
        @Option(
            help: """
                PostgreSQL database shared by several tripline processes, postgres://user@host:port/database[?sslmode=require] \
                (TRIPLINE_DATABASE_URL; the password from PGPASSWORD or TRIPLINE_DATABASE_PASSWORD_FILE). Replaces --database.
                """)
        var databaseURL: String?
        @Option(help: "FULL (durable on power loss) or NORMAL (durable on crash) (TRIPLINE_SYNCHRONOUS; default FULL).") var synchronous: String?
        @Option(help: "Rules folder (TRIPLINE_RULES; default rules).") var rules: String?
        @Option(help: "Folder of the local runner's flow runs: parameters and output (TRIPLINE_RUNS; default tripline-runs next to the database).")
        var runs: String?
        @Option(help: "How long events are kept, e.g. 7d, 12h, 3600 (TRIPLINE_RETENTION; default 7d).") var retention: String?
        @Option(help: "Largest request body in bytes (TRIPLINE_MAX_BODY_SIZE; default 10485760).") var maxBodySize: Int?
        @Option(
            help: """
                Bytes of event API and webhook request bodies decoded and waiting for their commit at once; more requests wait, \
                undecoded (TRIPLINE_INGEST_BUDGET; default 524288). Bounds ingest's memory under many clients.
                """)
        var ingestBudget: Int?
        @Option(help: "File of API tokens (TRIPLINE_API_TOKENS_FILE).") var apiTokensFile: String?
        @Option(help: "trace, debug, info, notice, warning, error (TRIPLINE_LOG_LEVEL; default info).") var logLevel: String?
        @Option(help: "text or json (TRIPLINE_LOG_FORMAT; default text).") var logFormat: String?
        @Option(help: "Folder of pinned SNS signing certificates (*.pem, named as in their SigningCertURL), used instead of fetching them (TRIPLINE_SNS_CERTIFICATES).")
        var snsCertificates: String?
        @Option(help: "YAML config file (TRIPLINE_CONFIG).") var config: String?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            let file = try loadConfigFile(config ?? environment["TRIPLINE_CONFIG"])
            func setting(_ flag: String?, _ variable: String, _ key: String) -> String? {
                flag ?? environment[variable] ?? file[key]
            }
            var configuration = ServerConfiguration()
            configuration.host = setting(host, "TRIPLINE_HOST", "host") ?? configuration.host
            if let text = setting(port.map(String.init), "TRIPLINE_PORT", "port") {
                guard let value = Int(text), (1...65535).contains(value) else {
                    throw ValidationError(
                        "port must be a number from 1 to 65535, got \"\(text)\""
                            + (text.hasPrefix("tcp://") ? " (Kubernetes sets TRIPLINE_PORT for a Service named tripline: set enableServiceLinks: false or pass --port)" : ""))
                }
                configuration.port = value
            }
            configuration.databasePath = setting(database, "TRIPLINE_DATABASE", "database") ?? configuration.databasePath
            configuration.synchronous = setting(synchronous, "TRIPLINE_SYNCHRONOUS", "synchronous") ?? configuration.synchronous
            configuration.databaseURL = try databaseURLSetting(setting(databaseURL, "TRIPLINE_DATABASE_URL", "database_url"), environment: environment)
            guard ["FULL", "NORMAL"].contains(configuration.synchronous.uppercased()) else {
                throw ValidationError("synchronous must be FULL or NORMAL, got \"\(configuration.synchronous)\"")
            }
            configuration.rulesPath = setting(rules, "TRIPLINE_RULES", "rules") ?? configuration.rulesPath
            configuration.runsPath = setting(runs, "TRIPLINE_RUNS", "runs")
            // Local runs start through this executable's `exec-run`, which gives them default signal handling.
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath
            if let executable { configuration.runLauncher = [executable, "exec-run"] }
            if let text = setting(retention, "TRIPLINE_RETENTION", "retention") {
                guard let span = parseRetention(text), span > .zero else {
                    throw ValidationError("retention must be a duration such as 7d, 12h, 30m or seconds, got \"\(text)\"")
                }
                configuration.retention = span
            }
            if let text = setting(maxBodySize.map(String.init), "TRIPLINE_MAX_BODY_SIZE", "max_body_size") {
                guard let value = Int(text), value >= 1024 else { throw ValidationError("max body size must be a number of bytes of at least 1024, got \"\(text)\"") }
                configuration.maximumBodySize = value
            }
            if let text = setting(ingestBudget.map(String.init), "TRIPLINE_INGEST_BUDGET", "ingest_budget") {
                guard let value = Int(text), value >= 1024 else { throw ValidationError("ingest budget must be a number of bytes of at least 1024, got \"\(text)\"") }
                configuration.ingestBudget = value
            }
            if let tokensFile = setting(apiTokensFile, "TRIPLINE_API_TOKENS_FILE", "api_tokens_file") {
                guard let data = FileManager.default.contents(atPath: tokensFile), let text = String(data: data, encoding: .utf8) else {
                    throw ValidationError("cannot read the API tokens file \(tokensFile)")
                }
                configuration.tokens = try APIToken.parseFile(text, file: tokensFile)
                if configuration.tokens.isEmpty {
                    printError("warning: \(tokensFile) holds no tokens; the server will only listen on loopback")
                }
            }
            configuration.snsCertificatesPath = setting(snsCertificates, "TRIPLINE_SNS_CERTIFICATES", "sns_certificates")
            configuration.benchmarkRoutes = environment["TRIPLINE_BENCH_ROUTES"] == "1"
            let level = setting(logLevel, "TRIPLINE_LOG_LEVEL", "log_level") ?? "info"
            guard let parsedLevel = Logger.Level(rawValue: level.lowercased()) else {
                throw ValidationError("log level must be one of trace, debug, info, notice, warning, error, critical; got \"\(level)\"")
            }
            let format = setting(logFormat, "TRIPLINE_LOG_FORMAT", "log_format") ?? "text"
            guard ["text", "json"].contains(format) else { throw ValidationError("log format must be text or json, got \"\(format)\"") }

            LoggingSystem.bootstrap { label in
                var handler = LineLogHandler(label: label, format: format == "json" ? .json : .text)
                handler.logLevel = parsedLevel
                return handler
            }
            let registry = PrometheusCollectorRegistry()
            let factory = PrometheusMetricsFactory(registry: registry)
            MetricsSystem.bootstrap(factory)
            let logger = Logger(label: "tripline")
            do {
                let (application, _) = try await TriplineApplication.build(
                    configuration: configuration, logger: logger, metricsFactory: factory, prometheus: registry)
                try await application.runService()
            } catch let error as TriplineError {
                logger.critical("cannot start: \(error)")
                throw ExitCode(1)
            }
        }

        private func loadConfigFile(_ path: String?) throws -> [String: String] {
            guard let path else { return [:] }
            let node: RuleNode
            do {
                node = try RuleNode.parse(try RulesLoader.text(path), file: path)
            } catch {
                throw ValidationError("config file: \(error)")
            }
            guard case .object(let members) = node.kind else { throw ValidationError("config file \(path) must be a mapping of settings") }
            let known = [
                "host", "port", "database", "database_url", "synchronous", "rules", "runs", "retention", "max_body_size", "ingest_budget", "api_tokens_file",
                "log_level", "log_format",
            ]
            var result: [String: String] = [:]
            for member in members {
                guard known.contains(member.key) else {
                    throw ValidationError("\(member.keyLocation.map(\.description) ?? path): unknown setting \"\(member.key)\"; known: \(known.joined(separator: ", "))")
                }
                switch member.value.kind {
                case .string(let text): result[member.key] = text
                case .int(let number): result[member.key] = String(number)
                default: throw ValidationError("\(member.value.location.map(\.description) ?? path): \(member.key) must be a string or a number")
                }
            }
            return result
        }
    }
}

/// The PostgreSQL URL with its password filled in from `PGPASSWORD` or the file `TRIPLINE_DATABASE_PASSWORD_FILE` names,
/// when the URL has none: the password then appears neither on the command line nor in the config file.
func databaseURLSetting(_ url: String?, environment: [String: String]) throws -> String? {
    guard let url else { return nil }
    guard var components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
        throw ValidationError("database URL must look like postgres://user@host:5432/database, got a \(url.split(separator: ":").first ?? "") URL")
    }
    guard components.password == nil else { return url }
    var password = environment["PGPASSWORD"]
    if let file = environment["TRIPLINE_DATABASE_PASSWORD_FILE"] {
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read TRIPLINE_DATABASE_PASSWORD_FILE \(file)")
        }
        password = text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    guard let password else { return url }
    // Only unreserved ASCII stays as it is; everything else (also non-ASCII letters) is percent-encoded.
    let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
    components.percentEncodedPassword = password.addingPercentEncoding(withAllowedCharacters: unreserved) ?? password
    return components.string ?? url
}

/// Parses `7d`, `12h`, `30m`, `45s`, plain seconds or an ISO 8601 duration.
func parseRetention(_ text: String) -> TimeSpan? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let units: [Character: Int64] = ["d": 86_400, "h": 3600, "m": 60, "s": 1]
    if let unit = trimmed.last, let factor = units[unit], let value = Double(trimmed.dropLast()) {
        return TimeSpan(seconds: value * Double(factor))
    }
    return TimeSpan(durationText: trimmed)
}

/// Log lines on standard error: text (`time level label: message key=value …`) or one JSON object per line, for log
/// collectors. Metadata is formatted only when a line is written (swift-log's stream handler formats it again on every
/// change, which is once per request here).
struct LineLogHandler: LogHandler {
    enum Format { case text, json }

    let label: String
    let format: Format
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let time = Instant(seconds: Date().timeIntervalSince1970).rfc3339
        let merged = event.metadata.map { metadata.merging($0, uniquingKeysWith: { _, new in new }) } ?? metadata
        var line: String
        switch format {
        case .text:
            line = "\(time) \(event.level) \(label): \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        case .json:
            var object: [String: JSONValue] = [
                "time": .string(time), "level": .string(event.level.rawValue), "label": .string(label), "message": .string(event.message.description),
            ]
            for (key, value) in merged { object[key] = .string("\(value)") }
            line = JSONValue.object(object).jsonText
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
