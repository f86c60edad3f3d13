import ArgumentParser
import Foundation
import TriplineCore

extension Tripline {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The local runner's flow runs on a running server: list them, show one, print its output.",
            discussion: """
                Talks to the server's /api/runs. The server is named by --api-url, TRIPLINE_API_URL or PREFECT_API_URL \
                (default http://127.0.0.1:4200/api); a token by TRIPLINE_API_TOKEN (read scope).
                """,
            subcommands: [List.self, Show.self, Logs.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List flow runs, newest first.")
            @OptionGroup var api: APIOptions
            @Option(help: "Only this deployment's runs (name or id).") var deployment: String?
            @Option(help: "Only runs in these states, e.g. Failed or Running,Pending.") var state: String?
            @Option(help: "How many (1 to 1000).") var limit = 50
            @Flag(help: "Print the server's JSON.") var json = false

            func run() async throws {
                var query = ["limit=\(limit)"]
                if let deployment {
                    query.append("deployment=\(deployment.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? deployment)")
                }
                if let state { query.append("state=\(state)") }
                let runs = try await api.json("GET", "/runs?" + query.joined(separator: "&"))
                if json { return print(runs.jsonText) }
                let rows = (runs.arrayValue ?? []).map { run in
                    [
                        run.cell("id"), run.cell("name"), run.cell("deployment_name"), run.cell("state_name"), run.cell("created"),
                        run.cell("exit_code"),
                        run["state"]?["message"]?.stringValue ?? "",
                    ]
                }
                printTable(["ID", "NAME", "DEPLOYMENT", "STATE", "CREATED", "EXIT", "MESSAGE"], rows)
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show one flow run: state, times, exit code, parameters.")
            @OptionGroup var api: APIOptions
            @Argument(help: "The flow run's id.") var id: String
            @Flag(help: "Print the server's JSON.") var json = false

            func run() async throws {
                let run = try await api.json("GET", "/runs/\(id)")
                if json { return print(run.jsonText) }
                print("flow run   \(run.cell("name")) (\(run.cell("id")))")
                print("deployment \(run.cell("deployment_name")) (\(run.cell("deployment_id")))")
                print("state      \(run.cell("state_name"))\(run["state"]?["message"]?.stringValue.map { ": \($0)" } ?? "")")
                print("created    \(run.cell("created"))")
                print("started    \(run.cell("start_time"))")
                print("ended      \(run.cell("end_time"))")
                print("exit code  \(run.cell("exit_code"))")
                print("parameters \(run["parameters"]?.jsonText ?? "{}")")
                if run.cell("idempotency_key") != "-" {
                    print("created by \(run.cell("created_by")) (idempotency key \(run.cell("idempotency_key")))")
                }
            }
        }

        struct Logs: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print a flow run's output (stdout and stderr).")
            @OptionGroup var api: APIOptions
            @Argument(help: "The flow run's id.") var id: String
            @Option(help: "Only the last N bytes.") var tail: Int?

            func run() async throws {
                let (status, data) = try await api.raw("GET", "/runs/\(id)/logs" + (tail.map { "?tail=\($0)" } ?? ""))
                guard status == 200 else {
                    try api.check(status, (try? JSONValue.parse(data)) ?? .null, expected: [200])
                    return
                }
                FileHandle.standardOutput.write(data)
            }
        }
    }
}
