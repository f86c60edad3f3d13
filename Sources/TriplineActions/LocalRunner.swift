public import CoreMetrics
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TriplineCore

/// Tripline's local runner: `run-deployment` without a destination creates a flow run of a deployment declared in
/// `rules/deployments/`, and the runner starts its command as a process when the deployment has room under its
/// concurrency limit, keeps its output, enforces its timeout, records every state in the store and announces it as a
/// Prefect-shaped `prefect.flow-run.<State>` event.
///
/// States: Scheduled (created; waits for room) → Pending (being started) → Running → Completed (exit status 0),
/// Failed (another exit status) or Crashed (it could not start, a signal ended it, it ran out of time, or the server
/// stopped or died while it ran). Cancelled when an action cancelled it; Paused ("Suspended") while suspended.
public final class LocalRunner: Service, Sendable {
    /// Settings of the runner.
    public struct Configuration: Sendable {
        /// The folder holding one folder per run (`<run id>/parameters.json`, `<run id>/output.log`).
        public var runsFolder: String
        /// The most output kept per run, in bytes; the rest is discarded with a note at the end of the log.
        public var logLimit = 10 * 1024 * 1024
        /// How long a process has between SIGTERM and SIGKILL.
        public var terminationGrace: TimeSpan = .seconds(10)
        /// How often waiting runs are looked at without being woken.
        public var pollInterval: Duration = .seconds(5)
        /// A program (and its first arguments) that starts each command, given the command's absolute path and
        /// arguments: `tripline serve` puts `tripline exec-run` here, which clears the signal mask and dispositions
        /// that a child would otherwise inherit from the server's thread (the server's threads block SIGTERM, so a
        /// command started directly could not be asked to stop) and then executes the command in its place. Empty:
        /// the command is started directly.
        public var launcher: [String] = []
        /// Variables of the server's environment that runs inherit (besides their deployment's `environment`).
        public var inheritedEnvironment = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SHELL"]

        /// Creates settings with runs kept under `runsFolder`.
        public init(runsFolder: String) {
            self.runsFolder = runsFolder
        }
    }

    let configuration: Configuration
    let store: any FlowRunStore
    let events: any EventSink
    let secrets: SecretResolver
    let deployments: DeploymentDirectory
    let logger: Logger
    let clock: @Sendable () -> Instant
    let wake = WakeSignal()
    let state = Mutex(StateMachine<RunProcess>())
    let metricsFactory: any MetricsFactory
    let runningGauge: Gauge

    /// Creates the runner.
    public init(
        configuration: Configuration, store: any FlowRunStore, events: any EventSink, deployments: DeploymentDirectory,
        secrets: SecretResolver = SecretResolver(),
        logger: Logger, metricsFactory: any MetricsFactory,
        clock: @escaping @Sendable () -> Instant = { Instant(seconds: Date().timeIntervalSince1970) }
    ) {
        self.configuration = configuration
        self.store = store
        self.events = events
        self.deployments = deployments
        self.secrets = secrets
        self.logger = logger
        self.clock = clock
        self.metricsFactory = metricsFactory
        runningGauge = Gauge(label: "tripline_flow_runs_running", factory: metricsFactory)
    }

    // MARK: - Service

    /// Marks runs left Running by a previous process as Crashed, then starts waiting runs as their deployments have
    /// room, until graceful shutdown; then terminates the runs still running (they end Crashed) and returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.recover()
            await withTaskGroup(of: Void.self) { group in
                while !self.state.withLock({ $0.stopping }), !Task.isCancelled {
                    await self.startDue(&group)
                    await self.wake.wait(timeout: self.configuration.pollInterval)
                }
                // Also when the loop ended by cancellation: the processes are terminated, not waited for.
                self.stop()
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops starting runs and terminates the running ones (they end Crashed); ``run()`` returns once they ended.
    public func stop() {
        let stopped = FlowRun.State(.crashed, message: "Tripline stopped while the run was running", at: clock())
        let processes = state.withLock { $0.stop(endingIn: stopped) }
        for process in processes { process.terminate(grace: configuration.terminationGrace) }
        wake.signal()
    }

    /// Runs that were Running (or suspended, or being cancelled) when the server stopped without ending them are
    /// Crashed: their process is gone with the server's.
    func recover() async {
        do {
            let orphans = try await store.runnerFlowRuns(stateTypes: [.running, .paused, .cancelling], limit: 10_000)
            for var run in orphans {
                run.pid = nil
                run.ended = clock()
                await transition(&run, to: FlowRun.State(.crashed, message: "Tripline stopped while the run was running", at: clock()))
            }
            if !orphans.isEmpty { logger.warning("runs left running by the previous server are Crashed", metadata: ["runs": "\(orphans.count)"]) }
        } catch {
            logger.error("cannot read the flow runs left running", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Creating runs

    /// Creates a flow run of `deployment` (Scheduled), or finds the one created before with the same idempotency
    /// key, and wakes the runner. The run starts later, when the deployment has room.
    /// - Returns: The run and whether it is new.
    /// - Throws: When the store or the event log does not take it (worth retrying: the key finds the same run).
    public func submit(deployment: Deployment, parameters: JSONValue, idempotencyKey: String, createdBy: String?) async throws -> (
        run: FlowRun, created: Bool
    ) {
        let id = UUID(stableName: "flow-run:\(idempotencyKey)")
        let text = id.lowercasedText
        let now = clock()
        let run = FlowRun(
            id: id, name: "\(deployment.name)-\(text.prefix(8))", deploymentID: deployment.id, deploymentName: deployment.name,
            flowID: deployment.flowID,
            flowName: deployment.flowName, parameters: parameters, idempotencyKey: idempotencyKey, state: FlowRun.State(.scheduled, at: now),
            created: now,
            createdBy: createdBy, logPath: (configuration.runsFolder as NSString).appendingPathComponent("\(text)/output.log"))
        let stored = try await store.createFlowRun(run)
        // The Scheduled event again when the run is still at its first state: an attempt that stored the run may have
        // failed before announcing it (the event's stable id stores it once).
        if stored.run.transitions == 1 { try await events.emit([stored.run.stateEvent(previous: nil)]) }
        if stored.created {
            Counter(label: "tripline_flow_runs_created_total", dimensions: [("deployment", deployment.name)], factory: metricsFactory).increment()
            logger.info("flow run scheduled", metadata: ["flow_run": "\(text)", "deployment": "\(deployment.name)"])
        }
        wake.signal()
        return stored
    }

    // MARK: - Starting runs

    private func startDue(_ group: inout TaskGroup<Void>) async {
        let waiting: [FlowRun]
        do {
            waiting = try await store.runnerFlowRuns(stateTypes: [.scheduled, .pending], limit: 1000)
        } catch {
            logger.error("cannot read the waiting flow runs", metadata: ["error": "\(error)"])
            return
        }
        for run in waiting {
            guard let deployment = deployments.deployment(id: run.deploymentID) else {
                var run = run
                await transition(
                    &run, to: FlowRun.State(.crashed, message: "the deployment \"\(run.deploymentName)\" is no longer declared", at: clock()))
                continue
            }
            guard state.withLock({ $0.admit(run.id, deployment: run.deploymentID, limit: deployment.concurrencyLimit) }) else { continue }
            group.addTask {
                await self.execute(run.id, deployment)
                self.state.withLock { $0.ended(run.id) }
                self.wake.signal()
            }
        }
    }

    /// Starts one run and follows it to its end.
    private func execute(_ id: UUID, _ deployment: Deployment) async {
        // Read again: an action may have cancelled it since it was listed.
        guard var run = try? await store.flowRun(id: id), !run.state.type.isFinal else { return }
        if run.state.type != .pending { await transition(&run, to: FlowRun.State(.pending, at: clock())) }
        let process: RunProcess
        do {
            process = try prepare(run, deployment)
            try process.launch()
        } catch {
            run.ended = clock()
            await transition(&run, to: FlowRun.State(.crashed, message: "the command could not be started: \(describe(error))", at: clock()))
            return
        }
        if state.withLock({ $0.started(id, handle: process) }) { process.terminate(grace: configuration.terminationGrace) }
        run.pid = Int(process.pid)
        run.started = clock()
        await transition(&run, to: FlowRun.State(.running, at: run.started!))
        Counter(label: "tripline_flow_runs_started_total", dimensions: [("deployment", deployment.name)], factory: metricsFactory).increment()
        runningGauge.record(state.withLock { $0.running })

        var timedOut = false
        if let timeout = deployment.timeout {
            timedOut = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    _ = await process.exit.value
                    return false
                }
                group.addTask {
                    do {
                        try await Task.sleep(for: .microseconds(timeout.microseconds))
                        return true
                    } catch {
                        return false
                    }
                }
                let first = await group.next() ?? false
                if first { process.terminate(grace: configuration.terminationGrace) }
                group.cancelAll()
                return first
            }
        }
        let termination = await process.wait()
        let requested = state.withLock { $0.exited(id) }
        runningGauge.record(state.withLock { $0.running })
        // The state may have changed meanwhile (suspend/resume): read the transitions count again.
        if let current = try? await store.flowRun(id: id) {
            run.transitions = current.transitions
            run.state = current.state
        }
        run.exitCode = termination.exitCode
        run.ended = clock()
        run.pid = nil
        let final: FlowRun.State
        if var requested {
            requested.timestamp = run.ended!
            final = requested
        } else if timedOut {
            final = FlowRun.State(.crashed, message: "timed out after \(deployment.timeout!.description); terminated", at: run.ended!)
        } else {
            switch termination {
            case .exited(0): final = FlowRun.State(.completed, message: "exited with status 0", at: run.ended!)
            case .exited(let status): final = FlowRun.State(.failed, message: "exited with status \(status)", at: run.ended!)
            case .signalled(let signal): final = FlowRun.State(.crashed, message: "ended by signal \(signal)", at: run.ended!)
            }
        }
        await transition(&run, to: final)
        Counter(
            label: "tripline_flow_runs_finished_total", dimensions: [("deployment", deployment.name), ("state", final.name)], factory: metricsFactory
        )
        .increment()
        logger.info(
            "flow run ended",
            metadata: [
                "flow_run": "\(id.lowercasedText)", "deployment": "\(deployment.name)", "state": "\(final.name)",
                "exit_code": "\(termination.exitCode)",
            ])
    }

    /// Writes the run's parameters file and builds its process (not started).
    func prepare(_ run: FlowRun, _ deployment: Deployment) throws -> RunProcess {
        let folder = (configuration.runsFolder as NSString).appendingPathComponent(run.id.lowercasedText)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let parametersPath = (folder as NSString).appendingPathComponent("parameters.json")
        let parameters = run.parameters.jsonText
        try Data(parameters.utf8).write(to: URL(fileURLWithPath: parametersPath))

        var environment: [String: String] = [:]
        let own = ProcessInfo.processInfo.environment
        for name in configuration.inheritedEnvironment { environment[name] = own[name] }
        for (name, value) in deployment.environment {
            do {
                environment[name] = try secrets.resolve(value, field: "environment \(name)")
            } catch let failure as ActionFailure {
                throw TriplineError(.invalidValue, failure.reason)
            }
        }
        environment["TRIPLINE_FLOW_RUN_ID"] = run.id.lowercasedText
        environment["TRIPLINE_FLOW_RUN_NAME"] = run.name
        environment["TRIPLINE_DEPLOYMENT_ID"] = run.deploymentID.lowercasedText
        environment["TRIPLINE_DEPLOYMENT_NAME"] = run.deploymentName
        environment["TRIPLINE_PARAMETERS_FILE"] = parametersPath
        // Large parameters only through the file and stdin: the environment has a size limit.
        if parameters.utf8.count <= 65_536 { environment["TRIPLINE_PARAMETERS"] = parameters }
        environment["PREFECT__FLOW_RUN_ID"] = run.id.lowercasedText

        var directory = folder
        if let declared = deployment.workingDirectory {
            if declared.hasPrefix("/") {
                directory = declared
            } else {
                let base = deployment.source?.file.map { ($0 as NSString).deletingLastPathComponent } ?? FileManager.default.currentDirectoryPath
                directory = ((base as NSString).appendingPathComponent(declared) as NSString).standardizingPath
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TriplineError(.io, "the working directory \(directory) does not exist")
        }
        let program = deployment.command[0]
        let executable: String
        if program.contains("/") {
            executable = program.hasPrefix("/") ? program : ((directory as NSString).appendingPathComponent(program) as NSString).standardizingPath
        } else {
            let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            guard
                let found = path.split(separator: ":").map({ ($0.isEmpty ? "." : String($0) as NSString).appendingPathComponent(program) })
                    .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
            else { throw TriplineError(.io, "\(program) is not found on the PATH (\(path))") }
            executable = found
        }
        guard FileManager.default.isExecutableFile(atPath: executable) else { throw TriplineError(.io, "\(executable) is not an executable file") }
        return RunProcess(
            executable: executable, arguments: Array(deployment.command.dropFirst()), launcher: configuration.launcher, environment: environment,
            directory: directory,
            stdinPath: parametersPath, logPath: run.logPath, logLimit: configuration.logLimit)
    }

    /// Records the run's new state and announces it; an event the log does not take is logged (the state is stored).
    func transition(_ run: inout FlowRun, to newState: FlowRun.State) async {
        let previous = run.state
        run.state = newState
        run.transitions += 1
        do {
            try await store.saveFlowRun(run)
        } catch {
            logger.error("cannot record a flow run's state", metadata: ["flow_run": "\(run.id.lowercasedText)", "error": "\(error)"])
        }
        do {
            try await events.emit([run.stateEvent(previous: previous)])
        } catch {
            logger.error("cannot emit a flow run's state event", metadata: ["flow_run": "\(run.id.lowercasedText)", "error": "\(error)"])
        }
    }

    func describe(_ error: any Error) -> String {
        if let error = error as? TriplineError { return error.reason }
        return (error as NSError).localizedDescription
    }
}
