import ArgumentParser
import Foundation
import TriplineCore

extension Tripline {
    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect the action outbox of a running server and re-drive dead letters.",
            discussion: """
                Talks to the server's /api/deliveries. The server is named by --api-url, TRIPLINE_API_URL or \
                PREFECT_API_URL (default http://127.0.0.1:4200/api); a token by TRIPLINE_API_TOKEN (read scope to list \
                and show, admin to retry).
                """,
            subcommands: [List.self, Show.self, Retry.self])
    }

    /// The server a command talks to.
    struct APIOptions: ParsableArguments {
        @Option(help: "The server's API URL (TRIPLINE_API_URL, PREFECT_API_URL; default http://127.0.0.1:4200/api).") var apiURL: String?

        var base: String {
            let environment = ProcessInfo.processInfo.environment
            var url = apiURL ?? environment["TRIPLINE_API_URL"] ?? environment["PREFECT_API_URL"] ?? "http://127.0.0.1:4200/api"
            while url.hasSuffix("/") { url.removeLast() }
            return url
        }

        /// Sends a request; returns the status and parsed JSON.
        func call(_ method: String, _ path: String) async throws -> (Int, JSONValue) {
            let (status, data) = try await raw(method, path)
            return (status, (try? JSONValue.parse(data)) ?? .null)
        }

        /// Sends a request; returns the status and the body as sent.
        func raw(_ method: String, _ path: String) async throws -> (Int, Data) {
            guard URL(string: base + path)?.host != nil else { throw ValidationError("not a URL: \(base + path)") }
            var headers: [(String, String)] = []
            if let token = ProcessInfo.processInfo.environment["TRIPLINE_API_TOKEN"] { headers.append(("Authorization", "Bearer \(token)")) }
            do {
                return try await HTTPCall.send(method, base + path, headers: headers)
            } catch {
                printError("error: cannot reach the server at \(base): \(error) (is `tripline serve` running? see --api-url)")
                throw ExitCode(1)
            }
        }

        /// Fails with the server's `detail` unless the status is one of `expected`.
        func check(_ status: Int, _ body: JSONValue, expected: Set<Int>) throws {
            guard expected.contains(status) else {
                // The server refused (not a usage error): say why, exit with status 1.
                printError("error: the server answered \(status): \(body["detail"]?.stringValue ?? body.jsonText)")
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List deliveries, newest first.")

        @OptionGroup var api: APIOptions
        @Option(help: "Only this automation's (id).") var automation: String?
        @Option(help: "Only deliveries in this status: pending, delivered, dead, suppressed.") var status: String?
        @Option(help: "How many (1-1000).") var limit = 50
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var query = ["limit=\(limit)"]
            if let automation { query.append("automation=\(automation)") }
            if let status { query.append("status=\(status)") }
            let (code, body) = try await api.call("GET", "/deliveries?" + query.joined(separator: "&"))
            try api.check(code, body, expected: [200])
            if json {
                print(body.jsonText)
                return
            }
            guard case .array(let items) = body else { return }
            print(String(format: "%-40@ %-11@ %-8@ %-20@ %-22@ %@", "ID", "STATUS", "ATTEMPTS", "ACTION", "CREATED", "AUTOMATION"))
            for item in items {
                print(
                    String(
                        format: "%-40@ %-11@ %-8@ %-20@ %-22@ %@", item["id"]?.stringValue ?? "", item["status"]?.stringValue ?? "",
                        "\(item["attempt_count"]?.number.map { Int($0) } ?? 0)", item["action_type"]?.stringValue ?? "",
                        String((item["created"]?.stringValue ?? "").prefix(22)), item["automation"]?.stringValue ?? ""))
                if let error = item["last_error"]?.stringValue { print("    last error: \(error)") }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one delivery and its attempts.")

        @OptionGroup var api: APIOptions
        @Argument(help: "The delivery id, <firing id>/<action index>.") var id: String

        func run() async throws {
            let (code, body) = try await api.call("GET", "/deliveries/\(id)")
            try api.check(code, body, expected: [200])
            Self.printDelivery(body)
        }

        static func printDelivery(_ body: JSONValue) {
            print("delivery   \(body["id"]?.stringValue ?? "")")
            print("automation \(body["automation"]?.stringValue ?? "") (\(body["automation_id"]?.stringValue ?? ""))")
            print("action     #\(body["action_index"]?.number.map { Int($0) } ?? 0) \(body["action_type"]?.stringValue ?? "")")
            print("status     \(body["status"]?.stringValue ?? "")  next attempt due \(body["available_at"]?.stringValue ?? "")")
            if let error = body["last_error"]?.stringValue { print("last error \(error)") }
            if case .array(let attempts)? = body["attempts"] {
                for attempt in attempts {
                    let status = attempt["status_code"]?.number.map { " HTTP \(Int($0))" } ?? ""
                    let error = attempt["error"]?.stringValue.map { ": \($0)" } ?? ""
                    print(
                        String(
                            format: "  #%d %@ %7.1f ms %@%@%@", Int(attempt["attempt"]?.number ?? 0), attempt["started"]?.stringValue ?? "",
                            attempt["duration_ms"]?.number ?? 0, attempt["outcome"]?.stringValue ?? "", status, error))
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-drive a dead (or suppressed) delivery: it runs again, with the same idempotency key.")

        @OptionGroup var api: APIOptions
        @Argument(help: "The delivery id, <firing id>/<action index>.") var id: String

        func run() async throws {
            let (code, body) = try await api.call("POST", "/deliveries/\(id)/retry")
            try api.check(code, body, expected: [202])
            print("re-driven: \(id) is pending again")
        }
    }
}
