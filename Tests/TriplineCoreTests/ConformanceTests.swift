import Foundation
import Testing
import TriplineCore

/// Runs the trigger-semantics conformance cases (the format of SEMANTICS.md §9–10) in process: the shipped copy
/// under Fixtures/conformance, plus the shared spec's cases when `../shared/spec/conformance/cases` exists.
@Suite struct ConformanceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    static var caseFiles: [URL] {
        let folders = [
            root.appendingPathComponent("Fixtures/conformance"),
            root.appendingPathComponent("../../../shared/spec/conformance/cases").standardizedFileURL,
        ]
        var byName: [String: URL] = [:]
        for folder in folders {
            let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
            for file in files where file.pathExtension == "json" { byName[file.lastPathComponent] = file }
        }
        return byName.keys.sorted().map { byName[$0]! }
    }

    @Test func thereAreCases() {
        #expect(Self.caseFiles.count >= 21)
    }

    @Test(arguments: caseFiles)
    func conformanceCase(_ file: URL) throws {
        let case_ = try JSONValue.parse(Data(contentsOf: file))
        guard case .array(let automationsJSON) = case_["automations"], case .array(let eventsJSON) = case_["events"],
            let until = case_["until"]?.stringValue.flatMap(Instant.init(rfc3339:)), case .array(let expectedJSON) = case_["expected"]
        else {
            Issue.record("\(file.lastPathComponent) is not a conformance case")
            return
        }
        let loaded = Automation.load(text: JSONValue.array(automationsJSON).jsonText, file: file.lastPathComponent)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        let events = try eventsJSON.map { try Event.decode($0) }
        let firings = Replay.run(automations: loaded.automations, events: events, until: until)
        // Compare as the runner does: to the second, order within one second free.
        func second(_ text: String) -> Int64 { (Instant(rfc3339: text)?.microseconds ?? 0) / 1_000_000 }
        let actual = firings.map { "\($0.at.microseconds / 1_000_000) \($0.automationName) \($0.triggeringEvent?.id.uuidString.lowercased() ?? "null")" }
        let expected = expectedJSON.map { firing in
            "\(second(firing["at"]?.stringValue ?? "")) \(firing["automation"]?.stringValue ?? "") \(firing["triggering_event"]?.stringValue?.lowercased() ?? "null")"
        }
        #expect(actual.sorted() == expected.sorted(), "\(file.lastPathComponent): \(case_["name"]?.stringValue ?? "")")
        #expect(actual.map { $0.prefix { $0 != " " } } == expected.map { $0.prefix { $0 != " " } }, "firing times must be in order")
    }
}
