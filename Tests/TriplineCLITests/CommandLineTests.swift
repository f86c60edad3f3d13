import Foundation
import Testing

/// Runs the built `tripline` executable as a user would.
@Suite struct CommandLineTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    static var executable: URL? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tripline"),
            repository.appendingPathComponent(".build/debug/tripline"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String]) throws -> Output {
        let binary = try #require(Self.executable, "the tripline executable was not built next to the tests; run `swift build` first")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = Self.repository
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    func temporaryFile(_ name: String, _ content: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent(name)
        try content.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    let automations = """
        - name: failures
          trigger: {type: event, posture: Reactive, expect: [job.failed], match: {env: prod}}
          actions: []
        """

    func event(_ number: Int, _ name: String, _ env: String = "prod") -> String {
        #"{"id": "00000000-0000-4000-8000-\#(String(format: "%012d", number))", "occurred": "2024-05-01T12:00:0\#(number)Z", "event": "\#(name)", "resource": {"prefect.resource.id": "job.1", "env": "\#(env)"}}"#
    }

    @Test func replayPrintsOneJSONLinePerFiring() throws {
        let rules = try temporaryFile("a.yaml", automations)
        let events = try temporaryFile("e.jsonl", [event(1, "job.failed"), event(2, "job.ok"), "", event(3, "job.failed")].joined(separator: "\n"))
        let output = try run(["replay", "--automations", rules, "--events", events, "--until", "2024-05-01T12:01:00Z"])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(
            lines.first == #"{"automation":"failures","state":"triggered","triggering_event":"00000000-0000-4000-8000-000000000001","at":"2024-05-01T12:00:01Z"}"#)
    }

    @Test func aMalformedEventLineStopsReplayWithItsLineNumber() throws {
        let rules = try temporaryFile("a.yaml", automations)
        let events = try temporaryFile("e.jsonl", [event(1, "job.failed"), #"{"id": "nope"}"#, event(3, "job.failed")].joined(separator: "\n"))
        let output = try run(["replay", "--automations", rules, "--events", events, "--until", "2024-05-01T12:01:00Z"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("e.jsonl:2:"))
        #expect(output.stderr.contains("id"))
    }

    @Test func skipInvalidReportsAndGoesOn() throws {
        let rules = try temporaryFile("a.yaml", automations)
        let events = try temporaryFile("e.jsonl", [event(1, "job.failed"), "{not json", event(3, "job.failed")].joined(separator: "\n"))
        let output = try run(["replay", "--automations", rules, "--events", events, "--until", "2024-05-01T12:01:00Z", "--skip-invalid"])
        #expect(output.status == 0)
        #expect(output.stdout.split(separator: "\n").count == 2)
        #expect(output.stderr.contains("e.jsonl:2: skipped invalid event"))
    }

    @Test func replayRejectsInvalidAutomationsWithTheirPosition() throws {
        let rules = try temporaryFile("bad.yaml", "name: x\ntrigger: {type: event, posture: Reactiv}\nactions: []\n")
        let events = try temporaryFile("e.jsonl", event(1, "job.failed"))
        let output = try run(["replay", "--automations", rules, "--events", events, "--until", "2024-05-01T12:01:00Z"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("bad.yaml:2:"))
        #expect(output.stderr.contains("did you mean \"Reactive\"?"))
    }

    @Test func validateReportsEveryProblemWithFileLineAndColumn() throws {
        let rules = try temporaryFile(
            "bad.yaml",
            """
            - name: one
              trigger: {type: event, posture: Proactive, within: 3}
              actions: []
            - name: two
              trigger: {type: event, posture: Reactive}
              actions: [{type: pause-deployment, source: sometimes}]
              colour: blue
            """)
        let output = try run(["validate", rules])
        #expect(output.status == 1)
        #expect(output.stdout.contains("bad.yaml:2:"))
        #expect(output.stdout.contains("at least 10 seconds"))
        #expect(output.stdout.contains("actions[0].source"))
        #expect(output.stdout.contains("bad.yaml:7:3: error: [1].colour: unknown field \"colour\""))
        #expect(output.stdout.contains("3 problems"))
    }

    @Test func validateReportsTemplateSyntaxErrorsAndUnknownDestinationsAtTheirLines() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("automations"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("destinations"), withIntermediateDirectories: true)
        try """
            destinations:
              ops-slack: {type: slack, url: env:SLACK_URL}
              leaky: {type: pagerduty, routing_key: e93facc04764012d7bfb002500d5d1a6}
              hook: {type: webhook, url: "https://hooks.example.com/x", headers: {Authorization: "Bearer 7c1d0e5f9a", X-Team: ops}}
            """.write(to: folder.appendingPathComponent("destinations/d.yaml"), atomically: true, encoding: .utf8)
        try """
            name: notify
            trigger: {type: event, posture: Reactive, expect: [x]}
            actions:
              - type: send-notification
                destination: ops-slack
                body: |
                  first line
                  {% if event.payload.ok %}
                  never closed
              - type: call-webhook
                destination: nowhere
                payload: "{{ x|nosuchfilter }}"
            """.write(to: folder.appendingPathComponent("automations/a.yaml"), atomically: true, encoding: .utf8)
        let output = try run(["validate", folder.path])
        #expect(output.status == 1)
        #expect(output.stdout.contains("a.yaml:8:1: error: actions[0].body: template syntax error"), "\(output.stdout)")
        #expect(output.stdout.contains("a.yaml:11:18: error: actions[1].destination: no destination named \"nowhere\""), "\(output.stdout)")
        #expect(output.stdout.contains("a.yaml:12:14: error: actions[1].payload: template syntax error: Unknown filter 'nosuchfilter'"), "\(output.stdout)")
        #expect(output.stdout.contains("d.yaml:3:") && output.stdout.contains("routing_key: is a secret and must be a reference"), "\(output.stdout)")
        #expect(!output.stdout.contains("e93facc04764012d7bfb002500d5d1a6"), "a secret written in the rules is not echoed")
        #expect(output.stdout.contains("headers.Authorization: a credential header must be a secret reference"), "\(output.stdout)")
        #expect(!output.stdout.contains("X-Team"), "other headers may be written as they are")
        #expect(!output.stdout.contains("7c1d0e5f9a"))
    }

    @Test func migrateAppliesPendingMigrationsAndCheckReportsThem() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-migrate-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let pending = try run(["migrate", "--database", path, "--check"])
        #expect(pending.status == 1, "pending migrations fail the check")
        #expect(pending.stdout.contains("2026-11-23-initial"), "\(pending.stdout)")
        let applied = try run(["migrate", "--database", path])
        #expect(applied.status == 0)
        #expect(applied.stdout.contains("applied") && applied.stdout.contains("2026-11-23-flow-runs"), "\(applied.stdout)")
        let current = try run(["migrate", "--database", path, "--check"])
        #expect(current.status == 0)
        #expect(current.stdout.contains("up to date"))
        let refused = try run(["migrate", "--database-url", "postgres://someone:hunter2secret@127.0.0.1:1/db?sslmode=disable"])
        #expect(refused.status == 1)
        #expect(!(refused.stdout + refused.stderr).contains("hunter2secret"), "the password is never printed")
        #expect((refused.stdout + refused.stderr).contains("127.0.0.1:1"))
    }

    @Test func validateAcceptsTheShippedRules() throws {
        let output = try run(["validate", "rules"])
        #expect(output.status == 0, "\(output.stdout)")
        #expect(output.stdout.contains("0 problems"))
        #expect(output.stdout.contains("deployments/hello.yaml: ok (1 deployment)"), "\(output.stdout)")
    }

    @Test func validateChecksDeploymentsAndTheDeploymentsActionsName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("deployments"), withIntermediateDirectories: true)
        try """
            - name: nightly
              command: [sh, -c, "exit 0"]
            - name: nightly
              command: [true]
              workdir: /tmp
            """.write(to: folder.appendingPathComponent("deployments/d.yaml"), atomically: true, encoding: .utf8)
        try """
            name: run it
            trigger: {type: event, posture: Reactive, expect: [x]}
            actions:
              - type: run-deployment
                source: selected
                deployment: nightlyy
            """.write(to: folder.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        let output = try run(["validate", folder.path])
        #expect(output.status == 1)
        #expect(output.stdout.contains("d.yaml:5:3: error: [1].workdir: unknown field \"workdir\""), "\(output.stdout)")
        #expect(
            output.stdout.contains("a.yaml:6:17: error: actions[0].deployment: no deployment named \"nightlyy\"") && output.stdout.contains("did you mean \"nightly\"?"),
            "\(output.stdout)")
    }

    @Test func explainNamesTheFailingCriterion() throws {
        let rules = try temporaryFile("a.yaml", automations)
        let target = try temporaryFile("event.json", event(1, "job.failed", "staging"))
        let output = try run(["explain", "--automations", rules, "--event", target])
        #expect(output.status == 0)
        #expect(output.stdout.contains("failures: did not match"))
        #expect(output.stdout.contains(#"match["env"]: "staging" on the event's resource matches none of ["prod"]"#))
    }

    @Test func explainWithHistoryTellsAboutDuplicates() throws {
        let rules = try temporaryFile("a.yaml", automations)
        let history = try temporaryFile("h.jsonl", event(1, "job.failed"))
        let target = try temporaryFile("event.json", event(1, "job.failed"))
        let output = try run(["explain", "--automations", rules, "--event", target, "--history", history, "--json"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("duplicate"))
    }
}
