import Foundation
import Synchronization
import Testing
import TriplineActions
import TriplineCore
import TriplineTestTargets
import TriplineStorage

/// call-webhook, emit-event, pause/resume, cooldown, re-drive and the chaos run, over real sockets and a real SQLite
/// file.
@Suite struct WebhookTests {
    func webhook(_ target: FakeTarget, allowPrivate: Bool = true, timeout: TimeSpan = .seconds(5)) -> Destination {
        Destination(
            name: "hook", kind: .webhook, url: .literal(target.url + "/hook"), headers: ["Authorization": .environment("TEST_HOOK_TOKEN")],
            allowPrivateNetwork: allowPrivate, timeout: timeout)
    }

    @Test func aWebhookGetsItsTemplatedBodyHeadersAndAStableIdempotencyKey() async throws {
        let target = FakeTarget { _, number in number == 0 ? FakeAnswer(status: 503) : FakeAnswer(status: 204) }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [webhook(target)], secrets: ["TEST_HOOK_TOKEN": "Bearer s3cr3t-token"])
        harness.start()
        let event = Event(
            id: UUID(), occurred: Instant(seconds: 1_700_000_000), event: "github.push", resource: Resource(["prefect.resource.id": "repo.api"]),
            payload: ["ref": "refs/heads/main"])
        let ids = try await harness.fire(
            [
                Action(
                    type: "call-webhook",
                    fields: [
                        "destination": "hook", "payload": ["ref": "{{ event.payload.ref }}", "automation": "{{ automation.name }}"],
                        "headers": ["X-Attempt": "{{ delivery.attempt }}"],
                    ])
            ], event: event)
        _ = try await harness.settle()
        await harness.stop()
        let requests = target.received
        #expect(requests.count == 2, "503 is retried")
        #expect(requests.map(\.body) == Array(repeating: #"{"automation":"test automation","ref":"refs/heads/main"}"#, count: 2))
        #expect(requests.map { $0.headers["x-attempt"] } == ["1", "2"])
        #expect(requests.allSatisfy { $0.headers["authorization"] == "Bearer s3cr3t-token" && $0.headers["content-type"] == "application/json" })
        let keys = Set(requests.compactMap { $0.headers["idempotency-key"] })
        #expect(keys.count == 1, "the same key on every attempt")
        let delivery = try #require(try await harness.store.delivery(id: ids[0]))
        #expect(delivery.status == .delivered)
        #expect(delivery.attempts.map(\.statusCode) == [503, 204])
        let stored = harness.sink.all.map(\.jsonValue.jsonText).joined()
        #expect(!stored.contains("s3cr3t"), "secrets stay out of events")
        target.stop()
    }

    @Test func privateAddressesAreRefusedUnlessTheDestinationAllowsThem() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 200) }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [webhook(target, allowPrivate: false)], secrets: ["TEST_HOOK_TOKEN": "x"])
        harness.start()
        let id = try await harness.fire([Action(type: "call-webhook", fields: ["destination": "hook", "payload": "x"])])[0]
        _ = try await harness.settle()
        await harness.stop()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .dead)
        #expect(delivery.attempts.count == 1)
        #expect(delivery.lastError?.contains("private or loopback") == true)
        #expect(target.received.isEmpty, "nothing was sent")
        target.stop()
    }

    @Test func templateErrorsAreNotRetried() async throws {
        let target = FakeTarget { _, _ in FakeAnswer(status: 200) }
        try await target.start()
        let harness = try DispatcherHarness(destinations: [webhook(target)], secrets: ["TEST_HOOK_TOKEN": "x"])
        harness.start()
        let id = try await harness.fire([Action(type: "call-webhook", fields: ["destination": "hook", "payload": "{% if x %}never closed"])])[0]
        _ = try await harness.settle()
        await harness.stop()
        let delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .dead)
        #expect(delivery.attempts.count == 1)
        #expect(delivery.lastError?.contains("template error in payload") == true, "\(delivery.lastError ?? "")")
        #expect(harness.sink.all.last?.event == "prefect.automation.action.failed")
        target.stop()
    }

    @Test func deadLettersCanBeRedrivenAndKeepTheirKey() async throws {
        let fail = Mutex(true)
        let target = FakeTarget { _, _ in fail.withLock { $0 } ? FakeAnswer(status: 500) : FakeAnswer(status: 200) }
        try await target.start()
        let harness = try DispatcherHarness(
            destinations: [webhook(target)], secrets: ["TEST_HOOK_TOKEN": "x"], retry: RetryPolicy(maximumAttempts: 2, backoff: .zero, maximumBackoff: .zero))
        harness.start()
        let id = try await harness.fire([Action(type: "call-webhook", fields: ["destination": "hook", "payload": "x"])])[0]
        _ = try await harness.settle()
        var delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .dead)
        #expect(delivery.attempts.map(\.outcome) == [.retry, .failure])
        #expect(delivery.lastError?.hasPrefix("gave up after 2 attempts") == true)
        #expect(try await harness.store.deliveries(automation: harness.automationID, status: .dead, limit: 10).map(\.id) == [id])
        fail.withLock { $0 = false }
        #expect(try await harness.store.redrive(id: id, now: Instant(seconds: Date().timeIntervalSince1970)))
        #expect(try await !harness.store.redrive(id: id, now: Instant(seconds: 0)), "only dead deliveries are re-driven")
        harness.dispatcher.wake.signal()
        _ = try await harness.settle()
        await harness.stop()
        delivery = try #require(try await harness.store.delivery(id: id))
        #expect(delivery.status == .delivered)
        #expect(delivery.attempts.map(\.number) == [1, 2, 3])
        #expect(Set(target.received.compactMap { $0.headers["idempotency-key"] }).count == 1)
        target.stop()
    }

    @Test(.timeLimit(.minutes(1))) func theDispatcherEndsWhenItsTaskIsCancelled() async throws {
        // A service group cancels its services when one of them fails (say the HTTP server cannot bind its port);
        // the dispatcher must end then, or the process would hang without serving.
        let harness = try DispatcherHarness(destinations: [])
        harness.start()
        try await Task.sleep(for: .milliseconds(50))
        let task = try #require(harness.runTask.withLock { $0 })
        let started = ContinuousClock.now
        task.cancel()
        _ = try? await task.value
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    @Test func aCooldownSuppressesFiringsAndRecordsThem() async throws {
        let harness = try DispatcherHarness(destinations: [])
        let start = Instant(seconds: Date().timeIntervalSince1970)
        let first = try await harness.fire([Action(type: "do-nothing")], cooldown: .seconds(60), at: start)
        let second = try await harness.fire([Action(type: "do-nothing")], cooldown: .seconds(60), at: start + .seconds(30))
        let third = try await harness.fire([Action(type: "do-nothing")], cooldown: .seconds(60), at: start + .seconds(61))
        harness.start()
        _ = try await harness.settle()
        await harness.stop()
        #expect(try await harness.store.delivery(id: first[0])?.status == .delivered)
        #expect(try await harness.store.delivery(id: second[0])?.status == .suppressed)
        #expect(try await harness.store.delivery(id: third[0])?.status == .delivered, "the cooldown counts from the last firing that ran")
        #expect(try await harness.store.delivery(id: second[0])?.attempts.isEmpty == true)
    }

    @Test func emitEventSendsATemplatedEventOnceEvenWhenRunTwice() async throws {
        let harness = try DispatcherHarness(destinations: [])
        harness.start()
        let action = Action(
            type: "emit-event",
            fields: [
                "event": "tripline.escalated", "resource": ["prefect.resource.id": "escalation.{{ labels.team }}"],
                "payload": ["from": "{{ automation.name }}"],
            ])
        try await harness.fire([action], labels: ["team": "data"])
        _ = try await harness.settle()
        await harness.stop()
        let emitted = harness.sink.all.filter { $0.event == "tripline.escalated" }
        #expect(emitted.count == 1)
        #expect(emitted.first?.resource.id == "escalation.data")
        #expect(emitted.first?.payload["from"] == "test automation")
    }

    /// A target that fails about half the requests (503, 429 with and without Retry-After, answers that never come
    /// back before the client's timeout) and, like an idempotent API, performs each Idempotency-Key once.
    @Test func underChaosEveryActionEndsDeliveredOrDeadAndRunsOnceAtAnIdempotentTarget() async throws {
        let performed = Mutex<[String: Int]>([:])
        let replays = Mutex(0)
        let target = FakeTarget { request, number in
            let key = request.headers["idempotency-key"] ?? "none"
            var random = SystemRandomNumberGenerator()
            switch Int.random(in: 0..<6, using: &random) {
            case 0: return FakeAnswer(status: 503)
            case 1: return FakeAnswer(status: 429, headers: ["Retry-After": "0"])
            case 2: return FakeAnswer(status: 429)
            default:
                // An idempotent target: the first request with a key performs the work, later ones replay the answer.
                let first = performed.withLock { table -> Bool in
                    table[key, default: 0] += 1
                    return table[key] == 1
                }
                if !first { replays.withLock { $0 += 1 } }
                // Sometimes the work is done but the answer is lost: the client times out and retries with the key.
                // The client's timeout leaves room for a loaded machine; a lost answer comes well after it.
                let lost = Int.random(in: 0..<6, using: &random) == 0
                return FakeAnswer(status: first ? 201 : 200, delay: lost ? .milliseconds(2_000) : .zero)
            }
        }
        try await target.start()
        let harness = try DispatcherHarness(
            destinations: [webhook(target, timeout: TimeSpan(seconds: 1))], secrets: ["TEST_HOOK_TOKEN": "x"],
            retry: RetryPolicy(maximumAttempts: 6, backoff: TimeSpan(seconds: 0.005), maximumBackoff: TimeSpan(seconds: 0.05)))
        harness.start()
        var ids: [String] = []
        for _ in 0..<60 { ids += try await harness.fire([Action(type: "call-webhook", fields: ["destination": "hook", "payload": "x"])]) }
        let deliveries = try await harness.settle(timeout: .seconds(60))
        await harness.stop()
        #expect(deliveries.count == 60)
        #expect(deliveries.allSatisfy { $0.status == .delivered || $0.status == .dead }, "\(deliveries.map(\.status))")
        let delivered = deliveries.filter { $0.status == .delivered }
        #expect(delivered.count > 40, "most get through: \(delivered.count)")
        // Every delivered action reached the target with its one key; retries after lost answers reused it, so the
        // idempotent target did the work once per action.
        let table = performed.withLock { $0 }
        for delivery in delivered {
            let key = OutboxEntry(
                id: delivery.id, firingID: delivery.firingID, automationID: delivery.automationID, automationName: "", actionIndex: delivery.actionIndex,
                action: Action(type: "call-webhook"), firedAt: delivery.created
            ).idempotencyKey
            #expect(table[key] != nil, "delivered \(delivery.id) was performed at the target")
        }
        #expect(table.count <= 60, "never more distinct pieces of work than actions: \(table.count)")
        let keysByDelivery = Dictionary(grouping: target.received, by: { $0.headers["idempotency-key"] ?? "" })
        #expect(keysByDelivery.count == 60, "one key per action, reused by its retries")
        var attemptsSeen = 0
        for id in ids {
            let delivery = try #require(try await harness.store.delivery(id: id))
            attemptsSeen += delivery.attempts.count
            #expect(delivery.attempts.map(\.number) == Array(1...delivery.attempts.count), "every attempt recorded")
        }
        #expect(attemptsSeen == target.received.count, "one attempt record per request the target saw")
        target.stop()
    }
}
