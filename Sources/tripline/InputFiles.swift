import ArgumentParser
import Foundation
import TriplineCore
import TriplineServer

/// Reading rules and events from files, for the commands.
enum InputFiles {
    /// Loads automations from a file or folder for a command; prints every problem and exits with status 2 when
    /// there is any.
    static func automationsOrExit(_ path: String) throws -> [Automation] {
        let loaded = try RulesLoader.automations([path])
        if !loaded.errors.isEmpty {
            for error in loaded.errors { printError("error: \(error)") }
            throw ExitCode(2)
        }
        return loaded.automations
    }

    /// Calls `body` with each line of a file (1-based line numbers), reading in chunks so that large files stream.
    static func forEachLine(_ path: String, _ body: (Int, Data) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw TriplineError(.io, "cannot read \(path)") }
        defer { try? handle.close() }
        var buffer = Data()
        var lineNumber = 0
        while true {
            let chunk = handle.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            buffer.append(chunk)
            var start = buffer.startIndex
            while let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                lineNumber += 1
                try body(lineNumber, buffer[start..<newline])
                start = buffer.index(after: newline)
            }
            buffer = Data(buffer[start...])
        }
        if !buffer.isEmpty {
            lineNumber += 1
            try body(lineNumber, buffer)
        }
    }
}

/// Buffered standard output.
struct OutputBuffer {
    private var buffer = ""

    mutating func line(_ text: String) {
        buffer += text
        buffer += "\n"
        if buffer.utf8.count > 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer.utf8))
        buffer = ""
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Parses an RFC 3339 timestamp argument.
func parseTimestamp(_ text: String, option: String) throws -> Instant {
    guard let instant = Instant(rfc3339: text) else {
        throw ValidationError("\(option) must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z, got \"\(text)\"")
    }
    return instant
}
