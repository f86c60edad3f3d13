import ArgumentParser
import Foundation
import TriplineCore

extension Tripline {
    struct Webhooks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Webhook endpoints of a running server and their recent deliveries.",
            discussion: """
                Talks to the server named by --api-url, TRIPLINE_API_URL or PREFECT_API_URL (default \
                http://127.0.0.1:4200/api), with the token in TRIPLINE_API_TOKEN (read scope).
                """,
            subcommands: [List.self, Deliveries.self, Show.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the webhook endpoints and whether each is ready.")
            @OptionGroup var api: APIOptions
            @Flag(help: "Print the server's JSON.") var json = false

            func run() async throws {
                let endpoints = try await api.json("GET", "/webhooks")
                if json { return print(endpoints.jsonText) }
                let rows = (endpoints.arrayValue ?? []).map { endpoint in
                    [
                        endpoint.cell("slug"), endpoint.cell("preset"), endpoint.cell("path"),
                        endpoint.cell("ready") == "true" ? "ready" : "not ready: \(endpoint.cell("problem"))", endpoint.cell("source_file"),
                    ]
                }
                printTable(["SLUG", "PRESET", "PATH", "STATE", "FILE"], rows)
            }
        }

        struct Deliveries: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Recent deliveries of one endpoint, newest first (like GitHub's \"Recent deliveries\").")
            @OptionGroup var api: APIOptions
            @Argument(help: "The endpoint's slug.") var slug: String
            @Option(help: "Only accepted, ignored or rejected deliveries.") var outcome: String?
            @Option(help: "How many (1 to 1000).") var limit = 20
            @Flag(help: "Print the server's JSON.") var json = false

            func run() async throws {
                var path = "/webhooks/\(slug)/deliveries?limit=\(limit)"
                if let outcome { path += "&outcome=\(outcome)" }
                let deliveries = try await api.json("GET", path)
                if json { return print(deliveries.jsonText) }
                let rows = (deliveries.arrayValue ?? []).map { delivery in
                    [
                        delivery.cell("id"), delivery.cell("received"), delivery.cell("status"), delivery.cell("outcome"),
                        delivery.cell("code") == "-" ? delivery.cell("reason") : "\(delivery.cell("code")): \(delivery.cell("reason"))",
                        delivery.cell("latency_ms"), delivery.cell("size"), delivery.cell("event_ids"),
                    ]
                }
                printTable(["ID", "RECEIVED", "STATUS", "OUTCOME", "REASON", "MS", "BYTES", "EVENTS"], rows)
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "One delivery in full (with the body of a failure, when the endpoint keeps it).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The endpoint's slug.") var slug: String
            @Argument(help: "The delivery id.") var id: Int

            func run() async throws {
                print(try await api.json("GET", "/webhooks/\(slug)/deliveries/\(id)").jsonText)
            }
        }
    }
}

extension Tripline.APIOptions {
    /// Sends a request and returns the JSON answer; any other status than 2xx fails with the server's `detail`.
    func json(_ method: String, _ path: String) async throws -> JSONValue {
        let (status, body) = try await call(method, path)
        try check(status, body, expected: Set(200..<300))
        return body
    }
}

extension JSONValue {
    /// A member as text for a table cell.
    func cell(_ key: String) -> String {
        guard case .object(let object) = self, let value = object[key] else { return "" }
        switch value {
        case .null: return "-"
        case .string(let text): return text
        case .array(let items): return items.map { $0.stringValue ?? $0.jsonText }.joined(separator: ",")
        default: return value.jsonText
        }
    }
}

/// Prints rows as aligned columns.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = min(max(widths[index], cell.count), 60) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            let text = cell.count > 60 ? String(cell.prefix(59)) + "…" : cell
            return index == cells.count - 1 ? text : text.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}
