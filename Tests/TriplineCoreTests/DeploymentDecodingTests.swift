import Foundation
import Testing
import TriplineCore

/// Deployments of the local runner, as declared in rules/deployments/.
@Suite struct DeploymentDecodingTests {
    @Test func aDeploymentReadsEveryField() throws {
        let loaded = Deployment.load(
            text: """
                name: nightly
                command: [python3, report.py, --all]
                working_directory: jobs
                environment: {TOKEN: env:REPORT_TOKEN, MODE: fast, LEVEL: 3}
                timeout: PT10M
                concurrency_limit: 2
                flow_name: reports
                """, file: "deployments/nightly.yaml")
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        let deployment = try #require(loaded.deployments.first)
        #expect(deployment.command == ["python3", "report.py", "--all"])
        #expect(deployment.workingDirectory == "jobs")
        #expect(deployment.environment == ["TOKEN": .environment("REPORT_TOKEN"), "MODE": .literal("fast"), "LEVEL": .literal("3")])
        #expect(deployment.timeout == .seconds(600))
        #expect(deployment.concurrencyLimit == 2)
        #expect(deployment.flowName == "reports")
        #expect(deployment.id == Deployment.id(name: "nightly"), "the id derives from the name")
        #expect(deployment.id == Deployment(name: "nightly", command: ["x"]).id)
        #expect(deployment.source?.line == 1)
    }

    @Test func everyProblemIsReportedAtItsLineWithAHint() throws {
        let loaded = Deployment.load(
            text: """
                - name: a
                  command: "echo hi"
                - name: b
                  command: [echo]
                  concurency_limit: 2
                  timeout: -1
                - command: [echo]
                """, file: "deployments/bad.yaml")
        #expect(loaded.deployments.isEmpty)
        let lines = loaded.errors.map { "\($0.location?.line ?? 0): \($0.message)" }
        #expect(loaded.errors.count == 4, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("2:") && $0.contains("list of the program and its arguments") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("5:") && $0.contains("did you mean \"concurrency_limit\"") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("6:") && $0.contains("more than 0 seconds") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("7:") && $0.contains("name") && $0.contains("required") }, "\(lines)")
        #expect(loaded.errors.allSatisfy { $0.location?.file == "deployments/bad.yaml" })
    }

    @Test func theStateEventIsShapedAsPrefectsServerShapesIt() throws {
        let deployment = Deployment(name: "hello", command: ["true"])
        var run = FlowRun(
            id: UUID(), name: "hello-1", deploymentID: deployment.id, deploymentName: "hello", flowID: deployment.flowID, flowName: "hello",
            parameters: [:], idempotencyKey: "k", state: FlowRun.State(.running, at: Instant(seconds: 100)), transitions: 3,
            created: Instant(seconds: 99), started: Instant(seconds: 100), logPath: "/tmp/x")
        let previous = run.state
        run.state = FlowRun.State(.failed, message: "exited with status 1", at: Instant(seconds: 105))
        run.transitions = 4
        let event = run.stateEvent(previous: previous)
        #expect(event.event == "prefect.flow-run.Failed")
        #expect(event.id == FlowRun.stateEventID(run: run.id, transition: 4))
        #expect(event.follows == FlowRun.stateEventID(run: run.id, transition: 3))
        #expect(event.resource.labels["prefect.state-type"] == "FAILED")
        #expect(event.resource.labels["prefect.state-message"] == "exited with status 1")
        #expect(event.resource.labels["prefect.run-count"] == "1")
        #expect(event.payload["validated_state"] == ["type": "FAILED", "name": "Failed", "message": "exited with status 1"])
        #expect(event.payload["initial_state"] == ["type": "RUNNING", "name": "Running"])
        #expect(event.related.map(\.role) == ["flow", "deployment", "tag"])
    }
}
