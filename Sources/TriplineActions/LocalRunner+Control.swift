public import Foundation
import Synchronization
public import TriplineCore

extension LocalRunner {
    /// Why the runner refused a change to a run.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The deployment named `name`.
    public func deployment(named name: String) -> Deployment? { deployments.value(named: name) }

    /// The deployment with the id `id`.
    public func deployment(id: UUID) -> Deployment? { deployments.deployment(id: id) }

    /// The names of every declared deployment.
    public var deploymentNames: [String] { deployments.all.map(\.name) }

    /// Whether `id` names a run of this runner.
    public func isLocalRun(_ id: UUID) async throws -> Bool {
        try await store.flowRun(id: id) != nil
    }

    /// Moves a run to `target`, as Prefect's flow-run actions do:
    /// - a final state (Cancelled by `cancel-flow-run`, or any final state of `change-flow-run-state`): a running
    ///   process is terminated (SIGTERM, then SIGKILL) and the run ends in that state; a waiting run ends at once;
    /// - Paused (`suspend-flow-run`): the process group is stopped (SIGSTOP);
    /// - Running (`resume-flow-run`): a suspended process group continues (SIGCONT);
    /// - Scheduled or Pending of a run that is not running: it waits to run (again).
    /// - Returns: The run after the change (a terminated run reaches its final state when its process has ended).
    /// - Throws: ``Refusal`` when the run is unknown or the change does not apply to its state.
    @discardableResult
    public func changeState(_ id: UUID, to target: FlowRun.State) async throws -> FlowRun {
        guard var run = try await store.flowRun(id: id) else {
            throw Refusal(description: "no local flow run has the id \(id.lowercasedText)")
        }
        let type = target.type == .cancelling ? FlowRun.StateType.cancelled : target.type
        var requested = target
        requested.type = type
        if target.type == .cancelling, target.name == "Cancelling" { requested.name = "Cancelled" }
        if run.state.type.isFinal {
            guard [.scheduled, .pending].contains(type), !state.withLock({ $0.isActive(id) }) else {
                throw Refusal(description: "flow run \(run.name) is already \(run.state.name)")
            }
            run.ended = nil
            run.exitCode = nil
            await transition(&run, to: requested)
            wake.signal()
            return run
        }
        switch state.withLock({ $0.request(id, requested) }) {
        case .terminate(let process):
            process.terminate(grace: configuration.terminationGrace)
        case .whenStarted:
            // A run being started: its task ends it in the requested state once its process exists.
            guard type.isFinal else { throw Refusal(description: "flow run \(run.name) is \(run.state.name); it is being started") }
        case .signal(let process):
            switch type {
            case .paused:
                guard run.state.type == .running else { throw Refusal(description: "flow run \(run.name) is \(run.state.name), not Running") }
                process.signal(SIGSTOP)
                if requested.name == "Paused" { requested.name = "Suspended" }
                await transition(&run, to: requested)
            case .running:
                guard run.state.type == .paused else { throw Refusal(description: "flow run \(run.name) is \(run.state.name), not suspended") }
                process.signal(SIGCONT)
                await transition(&run, to: requested)
            default:
                throw Refusal(description: "flow run \(run.name) is \(run.state.name); it cannot be set to \(requested.name)")
            }
        case .notActive:
            guard type.isFinal || [.scheduled, .pending].contains(type) else {
                throw Refusal(description: "flow run \(run.name) is \(run.state.name), not running")
            }
            if type.isFinal { run.ended = clock() }
            await transition(&run, to: requested)
            wake.signal()
        }
        return run
    }
}
