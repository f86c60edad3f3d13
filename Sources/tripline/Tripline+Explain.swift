import ArgumentParser
import Foundation
import TriplineCore
import TriplineServer

extension Tripline {
    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain, for one event and each automation, whether it matched and why not.",
            discussion: """
                Checks the event against every trigger (event name against expect/after, each match label, each \
                match_related spec, each match_payload path). With --history, the events before it are replayed first, \
                so that the answer also covers windows, thresholds, late events, duplicates and parked followers.
                """)

        @Option(help: "Automations: a YAML or JSON file, or a folder of them.")
        var automations: String

        @Option(help: "The event: a JSON file holding one event (or a JSON Lines file; its last line is explained).")
        var event: String

        @Option(help: "Events that arrived before it, as JSON Lines in arrival order.")
        var history: String?

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() throws {
            let automationList = try InputFiles.automationsOrExit(automations)
            let target = try readEvent()
            var replay = TriplineCore.Replay(engine: Engine(automations: automationList, store: InMemoryBucketStore()))
            if let history {
                try InputFiles.forEachLine(history) { number, line in
                    if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { return }
                    do {
                        _ = replay.feed(try Event.decode(json: line))
                    } catch let error as TriplineError {
                        throw TriplineError(error.code, "invalid event: \(error.message)", location: SourceLocation(file: history, line: number, column: 1))
                    }
                }
            }
            let notes = NoteCollector()
            replay.engine.trace = { note in notes.append(note) }
            let firings = replay.feed(target)

            var report: [JSONValue] = []
            var text: [String] = []
            text.append("event \(target.event) (\(target.id.lowercasedText)) on \(target.resource.id) at \(target.occurred)")
            for note in notes.all where note.automation == nil {
                text.append("  \(note.message)")
            }
            for automation in automationList {
                var failures: [String] = []
                var triggerLines: [String] = []
                let triggers = automation.trigger.eventTriggers
                for (index, trigger) in triggers.enumerated() {
                    let explanation = MatchExplanation(trigger: trigger, event: target)
                    let label = triggers.count > 1 ? "trigger \(index + 1) of \(triggers.count): " : ""
                    if explanation.matches {
                        triggerLines.append("\(label)matches")
                    } else {
                        failures += explanation.failures.map { label + $0 }
                        triggerLines += explanation.failures.map { label + $0 }
                    }
                }
                let engineNotes = notes.all.filter { $0.automation == automation.name }.map(\.message)
                let fired = firings.filter { $0.automationID == automation.id }
                let matched = triggers.contains { MatchExplanation(trigger: $0, event: target).matches }
                let verdict = !automation.enabled ? "disabled" : (!fired.isEmpty ? "fired" : (matched ? "matched, did not fire" : "did not match"))
                text.append("")
                text.append("\(automation.name): \(verdict)")
                if !automation.enabled { text.append("  the automation is disabled (enabled: false), so it is never evaluated") }
                for line in triggerLines { text.append("  - \(line)") }
                for line in engineNotes { text.append("  · \(line)") }
                report.append(
                    .object([
                        "automation": .string(automation.name),
                        "verdict": .string(verdict),
                        "criteria": .array(triggerLines.map(JSONValue.string)),
                        "evaluation": .array(engineNotes.map(JSONValue.string)),
                        "firings": .array(fired.map { .string($0.at.rfc3339) }),
                    ]))
            }
            if json {
                let eventNotes = notes.all.filter { $0.automation == nil }.map { JSONValue.string($0.message) }
                print(
                    JSONValue.object([
                        "event": .string(target.id.lowercasedText), "notes": .array(eventNotes), "automations": .array(report),
                    ]).jsonText)
            } else {
                print(text.joined(separator: "\n"))
            }
        }

        private func readEvent() throws -> Event {
            let content = try RulesLoader.text(event)
            let trimmed = content.trimmingCharacters(in: .whitespacesAndNewlines)
            do {
                if let value = try? JSONValue.parse(trimmed) { return try Event.decode(value) }
                guard let last = trimmed.split(separator: "\n").last else { throw TriplineError(.invalidEvent, "the file is empty") }
                return try Event.decode(json: Data(last.utf8))
            } catch let error as TriplineError {
                printError("error: \(event): invalid event: \(error.message)")
                throw ExitCode(2)
            }
        }
    }
}

/// Collects engine notes; the engine calls it synchronously on this thread.
final class NoteCollector: @unchecked Sendable {
    // Only touched from the single thread running the command.
    private(set) var all: [EngineNote] = []
    func append(_ note: EngineNote) { all.append(note) }
}
