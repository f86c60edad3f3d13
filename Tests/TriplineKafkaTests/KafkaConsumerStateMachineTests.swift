import Testing

@testable import TriplineKafka

/// The consumer's lifecycle without librdkafka.
@Suite struct KafkaConsumerStateMachineTests {
    @Test func anOwnersStopClosesOnceAndLetsRunReturn() {
        var machine = KafkaConsumer.StateMachine()
        machine.start()
        #expect(machine.mayPoll && machine.mayCommit)
        #expect(machine.closeTurn() == .nothing)
        _ = machine.requestClose(byOwner: true)
        #expect(!machine.mayPoll, "no record is handed out once close was asked for")
        #expect(machine.mayCommit, "the last commit may still be answered")
        #expect(machine.closeTurn() == .startClosing)
        #expect(machine.closeTurn() == .keepWaiting, "close starts once")
        #expect(!machine.mayCommit)
        _ = machine.requestClose(byOwner: true)
        #expect(machine.closeTurn() == .keepWaiting, "asking again changes nothing")
        machine.closed()
        #expect(machine.phase == .closed)
        #expect(machine.closeTurn() == .nothing)
    }

    @Test func aDroppedIteratorClosesButRunWaitsForTheOwner() async {
        var machine = KafkaConsumer.StateMachine()
        machine.start()
        #expect(machine.requestClose(byOwner: false) == nil)
        #expect(machine.closeTurn() == .startClosing)
        machine.closed()
        #expect(!machine.stopRequested)
        // run() parks until the owner stops it, and the owner's stop hands the parked waiter back to resume.
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            #expect(machine.awaitStop(waiter) == .wait)
            let resumed = machine.requestClose(byOwner: true)
            #expect(resumed != nil)
            resumed?.resume()
        }
        #expect(machine.stopRequested)
    }

    @Test func aStopBeforeRunClosesAsSoonAsRunStarts() {
        var machine = KafkaConsumer.StateMachine()
        _ = machine.requestClose(byOwner: true)
        machine.start()
        #expect(machine.closeTurn() == .startClosing)
        machine.closed()
        #expect(machine.stopRequested)
    }
}
