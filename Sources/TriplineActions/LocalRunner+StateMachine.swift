public import Foundation
public import TriplineCore

extension LocalRunner {
    /// What the runner knows of the runs it is starting or running: which deployment each belongs to (for the
    /// concurrency limits), its process once started, and the final state an action asked for. No IO: the runner acts
    /// on what the transitions return. Generic over the process handle so that it is tested without processes.
    struct StateMachine<Handle> {
        struct Active {
            var deploymentID: UUID
            var handle: Handle?
            /// The final state an action (cancel, change-flow-run-state) or the server's stop asked for.
            var requested: FlowRun.State?
        }

        private(set) var active: [UUID: Active] = [:]
        private(set) var stopping = false

        /// Whether the run may start now: not stopping, not already active, and its deployment under `limit` runs.
        /// An admitted run counts against the limit until ``ended(_:)``.
        mutating func admit(_ run: UUID, deployment: UUID, limit: Int) -> Bool {
            guard !stopping, active[run] == nil else { return false }
            guard active.values.filter({ $0.deploymentID == deployment }).count < limit else { return false }
            active[run] = Active(deploymentID: deployment)
            return true
        }

        /// The run's process started.
        /// - Returns: Whether it must be terminated at once (a final state was asked for while it was starting).
        mutating func started(_ run: UUID, handle: Handle) -> Bool {
            guard active[run] != nil else { fatalError("\(#function): run \(run) was not admitted") }
            active[run]?.handle = handle
            return active[run]?.requested != nil
        }

        /// What asking for a state means for a run.
        enum Request {
            /// The run is not being started or running: change its record directly.
            case notActive
            /// It is being started: its task ends it in the requested state once the process exists.
            case whenStarted
            /// Terminate this process; its task records the requested state when it ends.
            case terminate(Handle)
            /// Signal this running process (suspend, resume).
            case signal(Handle)
        }

        /// An action asks for `state` (final: the run ends in it; otherwise suspend or resume).
        mutating func request(_ run: UUID, _ state: FlowRun.State) -> Request {
            guard let entry = active[run] else { return .notActive }
            guard state.type.isFinal else { return entry.handle.map(Request.signal) ?? .whenStarted }
            active[run]?.requested = state
            return entry.handle.map(Request.terminate) ?? .whenStarted
        }

        /// The run's process ended.
        /// - Returns: The final state an action asked for, if any.
        mutating func exited(_ run: UUID) -> FlowRun.State? {
            active[run]?.handle = nil
            return active[run]?.requested
        }

        /// The run's task is done: it no longer counts against its deployment's limit.
        mutating func ended(_ run: UUID) {
            active[run] = nil
        }

        /// Stops admitting runs.
        /// - Returns: The processes to terminate; the runs still being started or running end in `state`.
        mutating func stop(endingIn state: FlowRun.State) -> [Handle] {
            stopping = true
            for id in active.keys where active[id]?.requested == nil { active[id]?.requested = state }
            return active.values.compactMap(\.handle)
        }

        /// How many runs have a process.
        var running: Int { active.values.filter { $0.handle != nil }.count }

        /// Whether the run is being started or running.
        func isActive(_ run: UUID) -> Bool { active[run] != nil }
    }
}
