import Foundation
import Testing
import TriplineCore

@Suite struct GlobTests {
    struct Vectors: Decodable {
        struct Fnmatch: Decodable {
            var pattern: String
            var value: String
            var matches: Bool
        }
        struct EventName: Decodable {
            var pattern: String
            var value: String
            var covers: Bool
            var index: Bool
        }
        var fnmatchcase: [Fnmatch]
        var event_name: [EventName]
    }

    static let vectors: Vectors = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/fnmatch-vectors.json")
        return try! JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }()

    @Test func agreesWithPythonFnmatchcaseOnEveryVector() {
        #expect(Self.vectors.fnmatchcase.count > 1000)
        for vector in Self.vectors.fnmatchcase {
            #expect(
                Glob(vector.pattern).matches(vector.value) == vector.matches,
                "fnmatchcase(\(vector.value.debugDescription), \(vector.pattern.debugDescription)) should be \(vector.matches)")
        }
    }

    @Test func starMatchesDotsAndEmptyRuns() {
        #expect(Glob("prefect.*").matches("prefect.flow-run.Failed"))
        #expect(Glob("prefect.*").matches("prefect."))
        #expect(Glob("*.Failed").matches("prefect.flow-run.Failed"))
        #expect(!Glob("*.Failed").matches("prefect.flow-run.Failed2"))
        #expect(Glob("a*b*c").matches("aXbYbZc"))
        #expect(!Glob("a*b*c").matches("acb"))
    }

    @Test func setsRangesAndNegatedSets() {
        #expect(Glob("run-[0-9]").matches("run-7"))
        #expect(!Glob("run-[0-9]").matches("run-x"))
        #expect(Glob("run-[!0-9]").matches("run-x"))
        #expect(Glob("[]]").matches("]"))
        #expect(Glob("[").matches("["), "an unterminated [ is literal")
        #expect(!Glob("[z-a]").matches("z"), "an empty range matches nothing")
    }

    @Test func matchingIsCaseSensitiveAndWhole() {
        #expect(!Glob("prefect.flow-run.failed").matches("prefect.flow-run.Failed"))
        #expect(!Glob("prefect.flow-run.Fail").matches("prefect.flow-run.Failed"))
        #expect(Glob("?").matches("é"), "? matches one character, not one byte")
    }

    @Test func labelPatternNegationAndMissingLabels() {
        #expect(LabelPattern("!prod").matches("staging"))
        #expect(!LabelPattern("!prod").matches("prod"))
        #expect(!LabelPattern("!prod").matches(nil), "a missing label never matches, not even a negated pattern")
        #expect(!LabelPattern("*").matches(nil))
        #expect(LabelPattern("!prod-*").matches("dev-1"))
    }
}

@Suite struct EventNameFilterTests {
    @Test func agreesWithPrefectsIndexAndCoversRegexOnEveryVector() {
        for vector in GlobTests.vectors.event_name {
            let filter = EventNameFilter(expect: [vector.pattern], after: [])
            #expect(
                filter.admits(vector.value) == (vector.covers && vector.index),
                "pattern \(vector.pattern.debugDescription) on \(vector.value.debugDescription)")
        }
    }

    @Test func namesMatchWholeAndStarNeedsACharacter() {
        let filter = EventNameFilter(expect: ["prefect.flow-run.Fail"], after: [])
        #expect(!filter.admits("prefect.flow-run.Failed"))
        let star = EventNameFilter(expect: ["prefect.flow-run.*"], after: [])
        #expect(star.admits("prefect.flow-run.Failed"))
        #expect(!star.admits("prefect.flow-run."), "`*` becomes `.+` in Prefect's covers regex")
    }

    @Test func questionMarksAndSetsAreLiteralInEventNames() {
        #expect(!EventNameFilter(expect: ["a.?"], after: []).admits("a.b"))
        #expect(!EventNameFilter(expect: ["a.[bc]"], after: []).admits("a.b"))
    }

    @Test func negatedEventNamesMatchEveryOtherName() {
        // Tripline's D1 (Prefect: never matches).
        let filter = EventNameFilter(expect: ["!heartbeat"], after: [])
        #expect(filter.admits("flow.failed"))
        #expect(!filter.admits("heartbeat"))
    }

    @Test func emptyExpectAdmitsEverythingEvenWithAfter() {
        let filter = EventNameFilter(expect: [], after: ["a.opened"])
        #expect(filter.admits("anything.at.all"))
        #expect(filter.indexKeys == ["*"])
    }

    @Test func afterPatternsAreAlsoAdmitted() {
        let filter = EventNameFilter(expect: ["run.completed"], after: ["run.started"])
        #expect(filter.admits("run.started"))
        #expect(filter.admits("run.completed"))
        #expect(!filter.admits("run.failed"))
    }

    @Test func rejectionExplainsTrailingStar() throws {
        let reason = try #require(EventNameFilter(expect: ["github.push"], after: []).rejection(of: "github.push.tag"))
        #expect(reason.contains("trailing *"))
        #expect(EventNameFilter(expect: ["github.push"], after: []).rejection(of: "github.push") == nil)
    }
}
