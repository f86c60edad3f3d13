import ArgumentParser
import Foundation
import TriplineCore

/// Reading rules and events from files, for the commands.
enum InputFiles {
    /// Every rules file under `paths` (files as given; folders searched recursively for .yaml, .yml and .json),
    /// sorted by path.
    static func ruleFiles(_ paths: [String]) throws(TriplineError) -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw TriplineError(.io, "no such file or folder: \(path)")
            }
            if !isDirectory.boolValue {
                files.append(path)
                continue
            }
            guard let enumerator = manager.enumerator(atPath: path) else { throw TriplineError(.io, "cannot read folder \(path)") }
            var found: [String] = []
            while let relative = enumerator.nextObject() as? String {
                // Hidden files and everything under hidden folders are skipped: Kubernetes mounts a ConfigMap as
                // links to files inside a `..<timestamp>` folder, which would otherwise load every rule twice.
                if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                    if (relative as NSString).lastPathComponent.hasPrefix(".") { enumerator.skipDescendants() }
                    continue
                }
                if relative.hasSuffix(".yaml") || relative.hasSuffix(".yml") || relative.hasSuffix(".json") {
                    found.append((path as NSString).appendingPathComponent(relative))
                }
            }
            files += found.sorted()
        }
        return files
    }

    /// Reads a text file.
    static func text(_ path: String) throws(TriplineError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw TriplineError(.io, "cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw TriplineError(.io, "\(path) is not UTF-8 text") }
        return text
    }

    /// Loads automations from files or folders.
    /// - Returns: The automations and every problem, located by file:line:column.
    static func automations(_ paths: [String]) throws(TriplineError) -> (automations: [Automation], errors: [TriplineError]) {
        var automations: [Automation] = []
        var errors: [TriplineError] = []
        for file in try ruleFiles(paths) {
            let loaded = Automation.load(text: try text(file), file: file)
            automations += loaded.automations
            errors += loaded.errors
        }
        return (automations, errors)
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
