internal import Foundation
internal import TriplineCore

/// One process of a flow run: started in its own process group with its parameters file on stdin, its stdout and
/// stderr copied into a log file up to a size limit, and signalled as a group (timeout, cancel, suspend).
final class RunProcess: Sendable {
    /// How a process ended.
    enum Termination: Sendable, Hashable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it.
        case signalled(Int32)

        /// The exit status, or 128 + the signal's number as shells report it.
        var exitCode: Int {
            switch self {
            case .exited(let status): Int(status)
            case .signalled(let signal): 128 + Int(signal)
            }
        }
    }

    // Process is not Sendable; it is configured before `launch()` and only read (pid) afterwards.
    nonisolated(unsafe) let process = Process()
    let exit = Completion<Termination>()
    let outputDone = Completion<Bool>()
    let logPath: String
    let logLimit: Int
    let stdinPath: String

    /// Prepares the process; nothing runs until ``launch()``.
    /// - Parameter launcher: A program and arguments put in front of the command (see
    ///   ``LocalRunner/Configuration/launcher``); empty to start the command itself.
    init(
        executable: String, arguments: [String], launcher: [String] = [], environment: [String: String], directory: String, stdinPath: String,
        logPath: String, logLimit: Int
    ) {
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = Array(launcher.dropFirst()) + [executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory, isDirectory: true)
        self.stdinPath = stdinPath
        self.logPath = logPath
        self.logLimit = logLimit
    }

    /// The process id (valid after a successful launch).
    var pid: Int32 { process.processIdentifier }

    /// Starts the process. Foundation puts the child in a process group of its own, so that signals reach whatever
    /// it starts too.
    /// - Throws: When the log or the parameters file cannot be opened or the program cannot be started.
    func launch() throws {
        guard let input = FileHandle(forReadingAtPath: stdinPath) else { throw TriplineError(.io, "cannot read \(stdinPath)") }
        defer { try? input.close() }
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw TriplineError(.io, "cannot write \(logPath)") }
        _ = try? log.seekToEnd()
        let pipe = Pipe()
        process.standardInput = input
        process.standardOutput = pipe
        process.standardError = pipe
        let exit = self.exit
        process.terminationHandler = { process in
            exit.complete(process.terminationReason == .uncaughtSignal ? .signalled(process.terminationStatus) : .exited(process.terminationStatus))
        }
        do {
            try process.run()
        } catch {
            try? log.close()
            throw error
        }
        let reader = pipe.fileHandleForReading
        let limit = logLimit
        let done = outputDone
        // Blocking reads on a thread of its own, never on the cooperative pool; it ends when every writer closed the
        // pipe.
        Thread.detachNewThread {
            var written = 0
            var truncated = false
            while let data = try? reader.read(upToCount: 65_536), !data.isEmpty {
                guard written < limit else { continue }
                let part = data.prefix(limit - written)
                try? log.write(contentsOf: part)
                written += part.count
                if written >= limit {
                    try? log.write(contentsOf: Data("\n[tripline: output truncated at \(limit) bytes]\n".utf8))
                    truncated = true
                }
            }
            try? reader.close()
            try? log.close()
            done.complete(truncated)
        }
    }

    /// Sends `signal` to the process's group.
    func signal(_ signal: Int32) {
        guard !exit.isComplete, pid > 0 else { return }
        kill(-pid, signal)
    }

    /// Asks the process to stop (SIGTERM, after SIGCONT in case it is suspended) and kills it (SIGKILL) when it is
    /// still running `grace` later.
    func terminate(grace: TimeSpan) {
        signal(SIGCONT)
        signal(SIGTERM)
        let exit = self.exit
        let pid = self.pid
        // A timer, not a task: it only sends a signal, and only while the process has not been reaped.
        DispatchQueue.global().asyncAfter(deadline: .now() + .microseconds(Int(grace.microseconds))) {
            if !exit.isComplete { kill(-pid, SIGKILL) }
        }
    }

    /// Waits until the process ended and its output was copied (at most `outputWait` longer, for output held open by
    /// something it left running).
    func wait(outputWait: Duration = .seconds(2)) async -> Termination {
        let termination = await exit.value
        let deadline = ContinuousClock.now + outputWait
        while !outputDone.isComplete, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return termination
    }
}
