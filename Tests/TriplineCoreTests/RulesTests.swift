import Foundation
import Testing
import TriplineCore
import TriplineTestKit

/// The shipped rules/ must be valid, and the sample events must make every example automation fire as described.
@Suite struct RulesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    static func ruleFiles() throws -> [URL] {
        let folder = repository.appendingPathComponent("rules/automations")
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { ["yaml", "yml", "json"].contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func loadAll() throws -> [Automation] {
        var automations: [Automation] = []
        for file in try ruleFiles() {
            let loaded = Automation.load(text: try String(contentsOf: file, encoding: .utf8), file: file.lastPathComponent)
            #expect(loaded.errors.isEmpty, "\(file.lastPathComponent): \(loaded.errors.map(\.description))")
            automations += loaded.automations
        }
        return automations
    }

    @Test func everyShippedRuleIsValid() throws {
        let automations = try Self.loadAll()
        #expect(automations.count >= 6)
        #expect(Set(automations.map(\.name)).count == automations.count, "names are unique")
    }

    @Test func theSampleEventsFireEachExampleAsDocumented() throws {
        let automations = try Self.loadAll()
        var events: [Event] = []
        let text = try String(contentsOf: Self.repository.appendingPathComponent("rules/examples/events.jsonl"), encoding: .utf8)
        for line in text.split(separator: "\n") { events.append(try Event.decode(json: Data(line.utf8))) }
        let firings = Replay.run(automations: automations, events: events, until: Instant(rfc3339: "2026-03-02T11:00:00Z")!)
        let summary = Set(firings.map { "\($0.automationName) @ \($0.at) by \(String($0.triggeringEvent?.id.uuidString.suffix(2) ?? "--"))" })
        #expect(
            summary == [
                "flow run failed twice in 10 minutes (per deployment) @ 2026-03-02T09:06:00Z by 03",
                "run the build deployment on a push to main @ 2026-03-02T09:07:00Z by 10",
                "ingest objects landing in s3://acme-lake/incoming/ @ 2026-03-02T09:12:00Z by 16",
                "worker heartbeat lost for 15 minutes @ 2026-03-02T09:20:00Z by 08",
                "two failed payments for one customer within an hour @ 2026-03-02T09:40:00Z by 13",
                "flow run stuck in Running for more than an hour @ 2026-03-02T10:01:00Z by 05",
            ])
        #expect(firings.count == 6)
    }
}
