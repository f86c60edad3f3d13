import Synchronization
import Testing

@testable import TriplineServer

@Suite struct IngestBudgetTests {
    final class Log: Sendable {
        private let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    struct Refused: Error {}

    @Test func requestsOverTheBudgetWaitInArrivalOrderAndEveryAdmissionIsReturned() async throws {
        let budget = IngestBudget(capacity: 100)
        let log = Log()
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let first = Task {
            try await budget.withAdmission(bytes: 60) {
                log.add("first")
                for await _ in gate { break }
                log.add("first done")
            }
        }
        try await eventually { budget.inUse == 60 }
        let second = Task { try await budget.withAdmission(bytes: 60) { log.add("second") } }
        try await eventually { budget.waiting == 1 }
        // Ten bytes would fit beside the first request, but the second arrived earlier and waits: no overtaking.
        let third = Task { try await budget.withAdmission(bytes: 10) { log.add("third") } }
        try await eventually { budget.waiting == 2 }
        #expect(log.all == ["first"])
        #expect(budget.inUse == 60)
        open.yield()
        try await first.value
        try await second.value
        try await third.value
        #expect(Array(log.all.prefix(2)) == ["first", "first done"])
        #expect(Set(log.all.dropFirst(2)) == ["second", "third"])
        #expect(budget.inUse == 0)
        #expect(budget.waiting == 0)
        // A failing request returns its bytes too.
        await #expect(throws: Refused.self) { try await budget.withAdmission(bytes: 80) { throw Refused() } }
        #expect(budget.inUse == 0)
    }

    @Test func aRequestLargerThanTheBudgetIsAdmittedAlone() async throws {
        let budget = IngestBudget(capacity: 100)
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let small = Task { try await budget.withAdmission(bytes: 30) { for await _ in gate { break } } }
        try await eventually { budget.inUse == 30 }
        let large = Task { try await budget.withAdmission(bytes: 5_000) { budget.inUse } }
        try await eventually { budget.waiting == 1 }
        open.yield()
        try await small.value
        #expect(try await large.value == 100, "charged the whole budget, so nothing runs beside it")
        #expect(budget.inUse == 0)
    }
}
