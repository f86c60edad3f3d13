import Foundation
import Testing
import TriplineActions
import TriplineCore
import TriplineStorage

/// The local runner with real processes, a real SQLite file and the dispatcher in front of it.
@Suite struct LocalRunnerTests {
    static func runDeployment(_ name: String, parameters: JSONValue = .object([:])) -> Action {
        Action(type: "run-deployment", fields: ["source": "selected", "deployment": .string(name), "parameters": parameters])
    }

    /// Fires `run-deployment` for `name`; returns the flow run the delivery created.
    static func run(_ harness: DispatcherHarness, _ name: String, parameters: JSONValue = .object([:])) async throws -> UUID {
        let id = try await harness.fire([runDeployment(name, parameters: parameters)])[0]
        func executed() -> Event? {
            harness.sink.all.last { $0.event == "prefect.automation.action.executed" && $0.payload["delivery"]?.stringValue == id }
        }
        for _ in 0..<1000 where executed() == nil { try await Task.sleep(for: .milliseconds(10)) }
        let delivery = try await harness.store.delivery(id: id)
        #expect(executed() != nil, "the run-deployment action succeeded: \(delivery?.lastError ?? "")")
        let executed = executed()
        return try #require(executed?.payload["flow_run_id"]?.stringValue.flatMap(UUID.init(uuidString:)))
    }

    @Test func aSucceedingCommandGetsItsParametersAndEndsCompleted() async throws {
        let script =
            #"echo "stdin: $(cat)"; echo "env: $TRIPLINE_PARAMETERS"; echo "file: $(cat "$TRIPLINE_PARAMETERS_FILE")"; echo "greeting: $GREETING"; echo oops >&2"#
        let harness = try DispatcherHarness(
            destinations: [], secrets: ["TEST_GREETING": "hi there"],
            deployments: [
                Deployment(
                    name: "hello", command: ["sh", "-c", script], environment: ["GREETING": .environment("TEST_GREETING")], flowName: "greeter")
            ])
        harness.start()
        harness.startRunner()
        let runID = try await Self.run(harness, "hello", parameters: ["who": "{{ event.event }}", "n": 3])
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(run.state.type == .completed && run.state.name == "Completed")
        #expect(run.exitCode == 0)
        #expect(run.parameters == ["who": "test.fired", "n": 3])
        #expect(run.started != nil && run.ended != nil)
        let log = try String(contentsOfFile: run.logPath, encoding: .utf8)
        for line in [
            #"stdin: {"n":3,"who":"test.fired"}"#, #"env: {"n":3,"who":"test.fired"}"#, #"file: {"n":3,"who":"test.fired"}"#, "greeting: hi there",
            "oops",
        ] {
            #expect(log.contains(line), "\(log)")
        }
        let events = harness.stateEvents(runID)
        #expect(
            events.map(\.event) == [
                "prefect.flow-run.Scheduled", "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Completed",
            ])
        let completed = try #require(events.last)
        #expect(completed.resource["prefect.state-type"] == "COMPLETED")
        #expect(completed.resource["prefect.state-name"] == "Completed")
        #expect(completed.resource[Resource.nameLabel] == run.name)
        let deployment = Deployment(name: "hello", command: ["sh"], flowName: "greeter")
        #expect(
            completed.related.contains {
                $0.id == "prefect.deployment.\(deployment.id.uuidString.lowercased())" && $0.role == "deployment"
                    && $0["prefect.resource.name"] == "hello"
            })
        #expect(
            completed.related.contains {
                $0.id == "prefect.flow.\(deployment.flowID.uuidString.lowercased())" && $0.role == "flow" && $0["prefect.resource.name"] == "greeter"
            })
        #expect(completed.payload["intended"] == ["from": "RUNNING", "to": "COMPLETED"])
        #expect(completed.payload["validated_state"]?["type"] == "COMPLETED")
        #expect(completed.payload["initial_state"]?["type"] == "RUNNING")
        #expect(completed.follows == events[2].id)
        #expect(!harness.sink.all.map(\.jsonValue.jsonText).joined().contains("hi there"), "environment secrets stay out of events")
    }

    @Test func theShippedExampleDeploymentRunsHere() async throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../rules/deployments/hello.yaml")
            .standardizedFileURL
        let loaded = Deployment.load(text: try String(contentsOf: file, encoding: .utf8), file: file.path)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        let hello = try #require(loaded.deployments.first)
        let harness = try DispatcherHarness(destinations: [], deployments: [hello])
        harness.start()
        harness.startRunner()
        let runID = try await Self.run(harness, hello.name, parameters: ["who": "the tests"])
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(run.state.type == .completed, "\(run.state.message ?? "")")
        let log = try String(contentsOfFile: run.logPath, encoding: .utf8)
        #expect(log.contains("hello from run \(run.name)") && log.contains(#"parameters: {"who":"the tests"}"#), "\(log)")
    }

    @Test func theLogIsCappedAndTheWorkingDirectoryIsRelativeToTheDeclaringFile() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-deployments-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("jobs"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = "pwd; i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done"
        let deployment = Deployment(
            name: "chatty", command: ["sh", "-c", script], workingDirectory: "jobs",
            source: SourceLocation(file: folder.appendingPathComponent("chatty.yaml").path, line: 1, column: 1))
        let harness = try DispatcherHarness(destinations: [], deployments: [deployment], configureRunner: { $0.logLimit = 4096 })
        harness.start()
        harness.startRunner()
        let runID = try await Self.run(harness, "chatty")
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(run.state.type == .completed, "a run whose output is cut still completes: \(run.state.message ?? "")")
        let log = try String(contentsOfFile: run.logPath, encoding: .utf8)
        #expect(log.hasPrefix(folder.appendingPathComponent("jobs").resolvingSymlinksInPath().path) || log.contains("/jobs\n"), "\(log.prefix(200))")
        #expect(log.utf8.count < 4096 + 100)
        #expect(log.hasSuffix("[tripline: output truncated at 4096 bytes]\n"))
    }

    @Test func aFailingCommandEndsFailedWithItsExitCode() async throws {
        let harness = try DispatcherHarness(
            destinations: [], deployments: [Deployment(name: "broken", command: ["sh", "-c", "echo failing; exit 3"])])
        harness.start()
        harness.startRunner()
        let runID = try await Self.run(harness, "broken")
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(run.state.type == .failed && run.exitCode == 3)
        #expect(run.state.message == "exited with status 3")
        let failed = try #require(harness.stateEvents(runID).last)
        #expect(failed.event == "prefect.flow-run.Failed")
        #expect(failed.resource["prefect.state-message"] == "exited with status 3")
    }

    @Test func aRunOutOfTimeIsTerminatedAndCrashed() async throws {
        let harness = try DispatcherHarness(
            destinations: [],
            deployments: [Deployment(name: "slow", command: ["sh", "-c", "trap '' TERM; sleep 30"], timeout: TimeSpan(seconds: 0.5))],
            configureRunner: { $0.terminationGrace = TimeSpan(seconds: 0.5) })
        harness.start()
        harness.startRunner()
        let started = ContinuousClock.now
        let runID = try await Self.run(harness, "slow")
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(ContinuousClock.now - started < .seconds(10), "SIGKILL after the grace period ended a process that ignores SIGTERM")
        #expect(run.state.type == .crashed)
        #expect(run.state.message?.contains("timed out") == true, "\(run.state.message ?? "")")
        #expect(harness.stateEvents(runID).last?.event == "prefect.flow-run.Crashed")
    }

    @Test func aCommandThatCannotStartCrashes() async throws {
        let harness = try DispatcherHarness(destinations: [], deployments: [Deployment(name: "missing", command: ["tripline-no-such-program"])])
        harness.start()
        harness.startRunner()
        let runID = try await Self.run(harness, "missing")
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(run.state.type == .crashed)
        #expect(run.state.message?.contains("not found on the PATH") == true, "\(run.state.message ?? "")")
        #expect(harness.stateEvents(runID).map(\.event) == ["prefect.flow-run.Scheduled", "prefect.flow-run.Pending", "prefect.flow-run.Crashed"])
    }

    @Test func aConcurrencyLimitOfOneRunsThreeTriggersOneAfterAnother() async throws {
        let harness = try DispatcherHarness(
            destinations: [], deployments: [Deployment(name: "serial", command: ["sh", "-c", "sleep 0.3"], concurrencyLimit: 1)])
        harness.start()
        harness.startRunner()
        var ids: [UUID] = []
        for _ in 0..<3 { ids.append(try await Self.run(harness, "serial")) }
        var runs: [FlowRun] = []
        for id in ids { runs.append(try #require(try await harness.finished(id))) }
        await harness.stop()
        #expect(Set(ids).count == 3, "three runs, none dropped")
        #expect(runs.allSatisfy { $0.state.type == .completed })
        let intervals = runs.compactMap { run in run.started.flatMap { start in run.ended.map { (start, $0) } } }.sorted { $0.0 < $1.0 }
        #expect(intervals.count == 3)
        for (earlier, later) in zip(intervals, intervals.dropFirst()) {
            #expect(earlier.1 <= later.0, "a run starts only after the one before it ended")
        }
    }

    @Test func theSameIdempotencyKeyCreatesOneRun() async throws {
        let harness = try DispatcherHarness(destinations: [], deployments: [Deployment(name: "once", command: ["true"])])
        let entry = OutboxEntry(
            id: "\(UUID().uuidString.lowercased())/0", firingID: UUID(), automationID: UUID(), automationName: "test", actionIndex: 0,
            action: Self.runDeployment("once"), firedAt: Instant(seconds: 1_700_000_000))
        let handler = RunDeploymentHandler(http: HTTPTarget(client: harness.client))
        let first = try await handler.run(ActionExecution(entry: entry, attempt: 1, environment: harness.environment))
        let second = try await handler.run(ActionExecution(entry: entry, attempt: 2, environment: harness.environment))
        #expect(first.details["flow_run_id"] == second.details["flow_run_id"])
        #expect(first.details["created"] == true && second.details["created"] == false)
        let runs = try await harness.store.flowRuns(deploymentID: nil, stateTypes: nil, limit: 10, oldestFirst: false)
        #expect(runs.count == 1)
        #expect(runs.first?.idempotencyKey == entry.idempotencyKey)
        #expect(harness.sink.all.filter { $0.event == "prefect.flow-run.Scheduled" }.count == 2, "announced again, with the same event id")
        #expect(Set(harness.sink.all.map(\.id)).count == 1)
    }

    @Test func aRestartCrashesRunsLeftRunningAndStartsWaitingOnes() async throws {
        let harness = try DispatcherHarness(destinations: [], deployments: [Deployment(name: "job", command: ["true"])])
        let deployment = Deployment(name: "job", command: ["true"])
        func record(_ type: FlowRun.StateType, _ number: Int) async throws -> UUID {
            let id = UUID()
            _ = try await harness.store.createFlowRun(
                FlowRun(
                    id: id, name: "job-\(number)", deploymentID: deployment.id, deploymentName: "job", flowID: deployment.flowID, flowName: "job",
                    parameters: [:], idempotencyKey: "key-\(number)", state: FlowRun.State(type, at: Instant(seconds: 1_700_000_000)), transitions: 3,
                    created: Instant(seconds: 1_700_000_000 + Double(number)), started: type == .running ? Instant(seconds: 1_700_000_001) : nil,
                    pid: type == .running ? 999_999 : nil, logPath: harness.runsFolder + "/\(id.uuidString.lowercased())/output.log"))
            return id
        }
        let running = try await record(.running, 1)
        let waiting = try await record(.scheduled, 2)
        harness.startRunner()
        let crashed = try #require(try await harness.finished(running))
        let completed = try #require(try await harness.finished(waiting))
        await harness.stopRunner()
        #expect(crashed.state.type == .crashed)
        #expect(crashed.state.message?.contains("stopped while the run was running") == true)
        #expect(harness.stateEvents(running).map(\.event) == ["prefect.flow-run.Crashed"])
        #expect(harness.stateEvents(running).first?.payload["intended"] == ["from": "RUNNING", "to": "CRASHED"])
        #expect(completed.state.type == .completed)
    }

    @Test func cancelFlowRunTerminatesALocalRunAndItEndsCancelled() async throws {
        let harness = try DispatcherHarness(destinations: [], deployments: [Deployment(name: "long", command: ["sleep", "30"])])
        harness.start()
        harness.startRunner()
        let runID = try await Self.run(harness, "long")
        for _ in 0..<500 where try await harness.store.flowRun(id: runID)?.state.type != .running { try await Task.sleep(for: .milliseconds(10)) }
        let running = try #require(harness.stateEvents(runID).last)
        #expect(running.event == "prefect.flow-run.Running")
        // Suspend, resume, then cancel: each acting on the run the triggering event is about.
        for type in ["suspend-flow-run", "resume-flow-run", "cancel-flow-run"] {
            let id = try await harness.fire([Action(type: type, fields: ["source": "inferred"])], event: running)[0]
            for _ in 0..<500 where try await harness.store.delivery(id: id)?.status == .pending { try await Task.sleep(for: .milliseconds(10)) }
            let delivery = try await harness.store.delivery(id: id)
            #expect(delivery?.status == .delivered, "\(type): \(delivery?.lastError ?? "")")
        }
        let run = try #require(try await harness.finished(runID))
        await harness.stop()
        #expect(run.state.type == .cancelled)
        #expect(run.exitCode == 128 + Int(SIGTERM), "SIGTERM ended it, before the grace period's SIGKILL")
        #expect(run.state.message?.contains("Cancelled by automation") == true)
        #expect(
            harness.stateEvents(runID).map(\.event) == [
                "prefect.flow-run.Scheduled", "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Suspended",
                "prefect.flow-run.Running", "prefect.flow-run.Cancelled",
            ])
    }
}
