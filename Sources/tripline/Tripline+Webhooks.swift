import ArgumentParser
import Foundation
import TriplineCore

extension Tripline {
    struct Webhooks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Webhook endpoints of a running server and their recent deliveries.",
            subcommands: [List.self, Deliveries.self, Show.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the webhook endpoints and whether each is ready.")
            @OptionGroup var connection: ServerConnection
            @Flag(help: "Print the server's JSON.") var json = false

            func run() async throws {
                let endpoints = try await connection.json("GET", "/api/webhooks")
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
            @OptionGroup var connection: ServerConnection
            @Argument(help: "The endpoint's slug.") var slug: String
            @Option(help: "Only accepted, ignored or rejected deliveries.") var outcome: String?
            @Option(help: "How many (1 to 1000).") var limit = 20
            @Flag(help: "Print the server's JSON.") var json = false

            func run() async throws {
                var path = "/api/webhooks/\(slug)/deliveries?limit=\(limit)"
                if let outcome { path += "&outcome=\(outcome)" }
                let deliveries = try await connection.json("GET", path)
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
            @OptionGroup var connection: ServerConnection
            @Argument(help: "The endpoint's slug.") var slug: String
            @Argument(help: "The delivery id.") var id: Int

            func run() async throws {
                print(try await connection.json("GET", "/api/webhooks/\(slug)/deliveries/\(id)").jsonText)
            }
        }
    }
}
