import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Tripline {
    /// Started by the local runner in front of each run's command: clears the signal mask and the ignored signals a
    /// child inherits from the server (whose threads block SIGTERM and SIGHUP and ignore SIGPIPE), then executes the
    /// command in its own place (same process id, same process group, same open files).
    struct ExecRun: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec-run", abstract: "Run a command with default signal handling (used by the local runner).", shouldDisplay: false)

        @Argument(parsing: .captureForPassthrough, help: "The program's absolute path and its arguments.") var command: [String] = []

        func run() throws {
            guard let program = command.first, program.hasPrefix("/") else {
                printError("error: exec-run needs the program's absolute path")
                throw ExitCode(127)
            }
            var nothing = sigset_t()
            sigemptyset(&nothing)
            sigprocmask(SIG_SETMASK, &nothing, nil)
            for number: Int32 in 1..<32 where number != SIGKILL && number != SIGSTOP { signal(number, SIG_DFL) }
            let arguments = command.map { strdup($0) } + [nil]
            execv(program, arguments)
            // Only reached when the program could not be executed.
            printError("error: cannot execute \(program): \(String(cString: strerror(errno)))")
            throw ExitCode(127)
        }
    }
}
