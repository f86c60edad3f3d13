import Synchronization
import Testing

@testable import TriplineServer

@Suite struct MessageBatcherTests {
    struct ReadFailed: Error {}

    @Test func everythingHeldIsTakenAtOnceInOrderAndAFullBatcherHoldsTheReaderBack() async throws {
        let batcher = MessageBatcher(capacity: 10, maximumCount: 3)
        let appended = Atomic<Int>(0)
        let reader = Task {
            for text in ["a", "b", "c", "d", "eeeeeeeeeeeeeeee", "f"] {
                await batcher.append(text)
                appended.add(1, ordering: .relaxed)
            }
            batcher.finish()
        }
        // Three messages fill it (the count limit): the fourth waits for a take.
        try await eventually { appended.load(ordering: .relaxed) == 3 }
        try await Task.sleep(for: .milliseconds(50))
        #expect(appended.load(ordering: .relaxed) == 3, "the reader waits while the batcher is full")
        #expect(try await batcher.takeAll() == ["a", "b", "c"])
        // "d" fits; the 16-byte message does not fit beside it (capacity 10) and waits; alone it is taken whole.
        try await eventually { appended.load(ordering: .relaxed) == 4 }
        #expect(try await batcher.takeAll() == ["d"])
        #expect(try await batcher.takeAll() == ["eeeeeeeeeeeeeeee"])
        #expect(try await batcher.takeAll() == ["f"])
        #expect(try await batcher.takeAll() == nil, "finished and empty")
        await reader.value
    }

    @Test func aReadFailureComesAfterWhatWasReadBeforeIt() async throws {
        let batcher = MessageBatcher(capacity: 100, maximumCount: 100)
        await batcher.append("a")
        await batcher.append("b")
        batcher.finish(throwing: ReadFailed())
        await batcher.append("late")
        #expect(try await batcher.takeAll() == ["a", "b"], "nothing appended after the end")
        await #expect(throws: ReadFailed.self) { try await batcher.takeAll() }
    }

    @Test func aTakerWaitsForTheFirstMessageAndBothSidesEndWhenCancelled() async throws {
        let batcher = MessageBatcher(capacity: 4, maximumCount: 1)
        let taker = Task { try await batcher.takeAll() }
        try await Task.sleep(for: .milliseconds(20))
        await batcher.append("x")
        #expect(try await taker.value == ["x"])

        // A reader held back by a full batcher, and a taker waiting on an empty one, both return when cancelled.
        await batcher.append("y")
        let heldReader = Task { await batcher.append("z") }
        try await Task.sleep(for: .milliseconds(20))
        heldReader.cancel()
        await heldReader.value
        #expect(try await batcher.takeAll() == ["y"], "the cancelled reader's message was not added")
        let waitingTaker = Task { try await batcher.takeAll() }
        try await Task.sleep(for: .milliseconds(20))
        waitingTaker.cancel()
        await #expect(throws: CancellationError.self) { try await waitingTaker.value }
    }
}
