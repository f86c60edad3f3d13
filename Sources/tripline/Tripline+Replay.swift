import ArgumentParser
import Foundation
import TriplineCore

extension Tripline {
    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay events through automations on event time and print every firing.",
            discussion: """
                Events are JSON Lines in arrival order. The clock follows each event's `occurred`; proactive triggers \
                are evaluated exactly when the scheduler would run them, and finally up to --until. Prints one JSON \
                object per firing: {"automation", "state", "triggering_event", "at"}.

                Exit status: 0 on success, 2 when the automations or an events line are invalid.
                """)

        @Option(help: "Automations: a YAML or JSON file (one automation or a list), or a folder of them.")
        var automations: String

        @Option(help: "Events, one JSON object per line, in arrival order.")
        var events: String

        @Option(help: "Run the clock up to this time (RFC 3339).")
        var until: String

        @Option(help: "Service start time (RFC 3339); defaults to the first event's occurred.")
        var start: String?

        @Flag(help: "Report malformed event lines on standard error and go on, instead of stopping.")
        var skipInvalid = false

        func run() throws {
            let untilInstant = try parseTimestamp(until, option: "--until")
            let startInstant = try start.map { try parseTimestamp($0, option: "--start") }
            let automationList = try InputFiles.automationsOrExit(automations)
            var replay = TriplineCore.Replay(engine: Engine(automations: automationList, store: InMemoryBucketStore()), start: startInstant)
            var output = OutputBuffer()
            var skipped = 0
            do {
                try InputFiles.forEachLine(events) { number, line in
                    if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { return }
                    let event: Event
                    do {
                        event = try Event.decode(json: line)
                    } catch let error as TriplineError {
                        if skipInvalid {
                            skipped += 1
                            printError("\(events):\(number): skipped invalid event: \(error.message)")
                            return
                        }
                        throw TriplineError(error.code, "invalid event: \(error.message)", location: SourceLocation(file: events, line: number, column: 1))
                    }
                    for firing in replay.feed(event) { output.line(firing.replayLine) }
                }
            } catch let error as TriplineError {
                output.flush()
                printError("error: \(error)")
                throw ExitCode(2)
            }
            for firing in replay.finish(until: untilInstant) { output.line(firing.replayLine) }
            output.flush()
            if skipped > 0 { printError("skipped \(skipped) invalid event line\(skipped == 1 ? "" : "s")") }
        }
    }
}
