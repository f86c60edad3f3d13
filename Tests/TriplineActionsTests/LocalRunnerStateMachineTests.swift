import Foundation
import Testing
import TriplineCore

@testable import TriplineActions

/// The runner's bookkeeping of active runs, without processes (handles are numbers).
@Suite struct LocalRunnerStateMachineTests {
    typealias Machine = LocalRunner.StateMachine<Int>
    let deployment = UUID()
    let other = UUID()
    let cancelled = FlowRun.State(.cancelled, at: Instant(seconds: 0))

    @Test func theConcurrencyLimitCountsRunsFromAdmissionToTheirEnd() {
        var machine = Machine()
        let (a, b, c) = (UUID(), UUID(), UUID())
        var admitted = [
            machine.admit(a, deployment: deployment, limit: 2), machine.admit(a, deployment: deployment, limit: 2),
            machine.admit(b, deployment: deployment, limit: 2), machine.admit(c, deployment: deployment, limit: 2),
            machine.admit(UUID(), deployment: other, limit: 1),
        ]
        #expect(admitted == [true, false, true, false, true], "a run once; the third waits; another deployment has its own limit")
        let terminateAtOnce = machine.started(a, handle: 1)
        #expect(!terminateAtOnce)
        #expect(machine.running == 1)
        let requested = machine.exited(a)
        #expect(requested == nil)
        admitted = [machine.admit(c, deployment: deployment, limit: 2)]
        #expect(admitted == [false], "an exited run counts until its task ended")
        machine.ended(a)
        admitted = [machine.admit(c, deployment: deployment, limit: 2)]
        #expect(admitted == [true])
    }

    @Test func aFinalStateAskedForIsKeptUntilTheProcessEnds() {
        var machine = Machine()
        let run = UUID()
        guard case .notActive = machine.request(run, cancelled) else {
            Issue.record("a waiting run is changed directly")
            return
        }
        let admitted = machine.admit(run, deployment: deployment, limit: 1)
        #expect(admitted)
        guard case .whenStarted = machine.request(run, cancelled) else {
            Issue.record("a starting run is ended by its task")
            return
        }
        let terminateAtOnce = machine.started(run, handle: 7)
        #expect(terminateAtOnce, "asked to end while starting: terminate at once")
        guard case .terminate(7) = machine.request(run, cancelled) else {
            Issue.record("a running run's process is terminated")
            return
        }
        guard case .signal(7) = machine.request(run, FlowRun.State(.paused, at: Instant(seconds: 0))) else {
            Issue.record("suspending signals the process")
            return
        }
        let requested = machine.exited(run)
        #expect(requested == cancelled)
    }

    @Test func stoppingEndsEveryActiveRunCrashedAndAdmitsNoMore() {
        var machine = Machine()
        let (a, b) = (UUID(), UUID())
        _ = machine.admit(a, deployment: deployment, limit: 5)
        _ = machine.admit(b, deployment: deployment, limit: 5)
        _ = machine.started(a, handle: 1)
        _ = machine.request(b, cancelled)
        let crashed = FlowRun.State(.crashed, message: "stopped", at: Instant(seconds: 0))
        let toTerminate = machine.stop(endingIn: crashed)
        #expect(toTerminate == [1])
        let (first, second) = (machine.exited(a), machine.exited(b))
        #expect(first == crashed)
        #expect(second == cancelled, "a state asked for before the stop is kept")
        let admitted = machine.admit(UUID(), deployment: deployment, limit: 5)
        #expect(!admitted)
    }
}
