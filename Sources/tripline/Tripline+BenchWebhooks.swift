import ArgumentParser
import Foundation
import TriplineCore
import TriplineIngest

extension Tripline {
    struct WebhooksBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "webhooks",
            abstract: "Verified GitHub deliveries per second and their latency, against the HTTP ceiling measured in the same run.",
            discussion: """
                Needs wrk (apt-get install wrk). Starts a server with 100 automations and a GitHub endpoint on a fresh \
                database, then posts a realistic push delivery (about 7 KB, HMAC-SHA256 signed, a new X-GitHub-Delivery \
                each time) and reports deliveries/s (verified, mapped, durable before the answer) as a fraction of the \
                ceiling (a no-op route reading the same body), and the answer latency p50/p99 unloaded (wrk, one connection, \
                a delivery every 5 ms). Build with -c release.
                """)

        @Option(help: "Seconds per wrk run.") var duration = 10
        @Option(help: "Concurrent connections for wrk.") var connections = 32
        @Option(help: "Seconds of the latency measurement.") var latencySeconds = 3
        @Option(help: "Port for the server.") var port = 4712

        static let secret = "bench-webhook-secret-0f3a9c"

        func run() async throws {
            var harness = try BenchHarness(port: port, connections: connections, duration: duration)
            defer { harness.finish() }
            _ = try harness.write(ServeBench.rules, to: "rules/automations/bench.yaml")
            _ = try harness.write("slug: github\npreset: github\nsecrets: [env:TRIPLINE_BENCH_GITHUB_SECRET]\n", to: "rules/webhooks/github.yaml")
            let body = Self.pushPayload()
            let bodyFile = try harness.write(body, to: "push.json")
            let signature = "sha256=" + ByteEncoding.hex.encode(DigestAlgorithm.sha256.hmac(key: Array(Self.secret.utf8), message: Array(body.utf8)))
            _ = try await harness.startServer(environment: ["TRIPLINE_BENCH_GITHUB_SECRET": Self.secret])
            print("tripline bench webhooks: GitHub push deliveries of \(body.utf8.count) bytes, 100 automations, synchronous=FULL, \(connections) connections, \(duration) s per run")

            let ceiling = try harness.runWrk(script: Self.wrkScript(path: "/api/bench/noop", signature: signature), name: "ceiling", arguments: [bodyFile.path, "1"])
            let deliveries = try harness.runWrk(script: Self.wrkScript(path: "/hooks/github", signature: signature), name: "hooks", arguments: [bodyFile.path, "2"])
            print(String(format: "HTTP ceiling (no-op route, same body):   %8.0f requests/s", ceiling))
            print(String(format: "verified GitHub deliveries:              %8.0f deliveries/s  (%.0f%% of the ceiling)", deliveries, deliveries / ceiling * 100))

            // Latency: one connection posting a delivery every 5 ms, once the background work the load left is done.
            try await Task.sleep(for: .seconds(3))
            let latency = try harness.runWrkLatency(
                script: Self.wrkScript(path: "/hooks/github", signature: signature, pace: 5), name: "latency", seconds: latencySeconds, arguments: [bodyFile.path, "3"])
            print(String(format: "delivery latency, unloaded:              p50 %.2f ms, p99 %.2f ms (%d deliveries)", latency.p50, latency.p99, latency.requests))
            print(harness.memoryReport)
        }

        /// - Parameter pace: Milliseconds between an answer and the next request (0: back to back).
        static func wrkScript(path: String, signature: String, pace: Int = 0) -> String {
            """
            function delay() return \(pace) end
            local threads = 0
            function setup(thread) thread:set("tid", threads); threads = threads + 1 end
            function init(args)
              local file = io.open(args[1], "rb"); body = file:read("*a"); file:close()
              run = tonumber(args[2]) or 0; counter = 0
            end
            function request()
              counter = counter + 1
              local headers = {["Content-Type"] = "application/json", ["X-GitHub-Event"] = "push",
                ["X-Hub-Signature-256"] = "\(signature)",
                ["X-GitHub-Delivery"] = string.format("%08x-%04x-4000-8000-%012x", run, tid, counter)}
              return wrk.format("POST", "\(path)", headers, body)
            end
            """
        }

        /// A push to main of a repository with three commits, shaped like GitHub's (about 7 KB).
        static func pushPayload() -> String {
            let repository = "acme/data-pipelines"
            var repo: [String: JSONValue] = [
                "id": 186_853_002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": "data-pipelines", "full_name": .string(repository),
                "private": false, "fork": false, "default_branch": "main", "master_branch": "main", "size": 2_871, "stargazers_count": 12,
                "watchers_count": 12, "language": "Python", "has_issues": true, "has_projects": true, "has_wiki": false, "archived": false,
                "open_issues_count": 3, "visibility": "private", "pushed_at": 1_700_000_000, "created_at": 1_557_933_642,
                "owner": .object([
                    "login": "acme", "id": 38_302_899, "type": "Organization", "site_admin": false,
                    "html_url": "https://github.com/acme", "url": "https://api.github.com/users/acme", "avatar_url": "https://avatars.githubusercontent.com/u/38302899?v=4",
                ]),
            ]
            for name in [
                "archive", "assignees", "blobs", "branches", "collaborators", "comments", "commits", "compare", "contents", "contributors", "deployments",
                "downloads", "events", "forks", "git_commits", "git_refs", "git_tags", "hooks", "issue_comment", "issue_events", "issues", "keys", "labels",
                "languages", "merges", "milestones", "notifications", "pulls", "releases", "stargazers", "statuses", "subscribers", "subscription", "tags",
                "teams", "trees",
            ] {
                repo["\(name)_url"] = .string("https://api.github.com/repos/\(repository)/\(name){/sha}")
            }
            repo["html_url"] = .string("https://github.com/\(repository)")
            repo["clone_url"] = .string("https://github.com/\(repository).git")
            repo["ssh_url"] = .string("git@github.com:\(repository).git")
            let author: JSONValue = .object(["name": "Jane Doe", "email": "jane@acme.example", "username": "janedoe"])
            let commits: [JSONValue] = (0..<3).map { index in
                let id = String(repeating: String(index), count: 40)
                return .object([
                    "id": .string(id), "tree_id": .string(String(repeating: "a", count: 40)), "distinct": true,
                    "message": .string("Load the daily partitions in parallel (#\(400 + index))\n\nThe loader now fans out per partition and retries transient errors."),
                    "timestamp": "2026-11-23T09:00:00Z", "url": .string("https://github.com/\(repository)/commit/\(id)"), "author": author, "committer": author,
                    "added": .array([.string("flows/daily_\(index).py")]), "removed": [], "modified": ["flows/loader.py", "tests/test_loader.py"],
                ])
            }
            let payload: JSONValue = .object([
                "ref": "refs/heads/main", "before": .string(String(repeating: "9", count: 40)), "after": .string(String(repeating: "2", count: 40)),
                "created": false, "deleted": false, "forced": false, "base_ref": .null,
                "compare": .string("https://github.com/\(repository)/compare/999999999999...222222222222"), "commits": .array(commits),
                "head_commit": commits[2], "repository": .object(repo), "pusher": .object(["name": "janedoe", "email": "jane@acme.example"]),
                "organization": .object(["login": "acme", "id": 38_302_899, "url": "https://api.github.com/orgs/acme"]),
                "sender": .object(["login": "janedoe", "id": 21_031_067, "type": "User", "site_admin": false, "html_url": "https://github.com/janedoe"]),
                "installation": .object(["id": 2_311_213, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMjMxMTIxMw=="]),
            ])
            return payload.jsonText
        }
    }
}
