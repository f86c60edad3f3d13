import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import Synchronization
import Testing
import TriplineActions
import TriplineCore
import TriplineStorage
import TriplineTemplates
import TriplineTestKit
import TriplineTestTargets

/// Collects the events the action layer emits.
final class CollectingSink: EventSink {
    let events = Mutex<[Event]>([])
    func emit(_ events: [Event]) async throws { self.events.withLock { $0 += events } }
    var all: [Event] { events.withLock { $0 } }
}

/// A dispatcher over a real database and a real HTTP client, with firings written as the pipeline writes them. The
/// database is an SQLite file, or with `TRIPLINE_TEST_STORE=postgres` a fresh PostgreSQL database (CI runs this suite
/// both ways).
final class DispatcherHarness: Sendable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-actions-\(UUID().uuidString).sqlite").path
    let store: any TriplineStore
    let sink = CollectingSink()
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    let dispatcher: Dispatcher
    let automationID = UUID()
    let runTask = Mutex<Task<Void, any Error>?>(nil)
    let counter = Mutex(0)
    /// The local runner, over the same store and sink; its runs live in a temporary folder.
    let runner: LocalRunner
    let runsFolder = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-runs-\(UUID().uuidString)").path
    let runnerTask = Mutex<Task<Void, any Error>?>(nil)
    let environment: ActionEnvironment

    init(
        destinations: [Destination], secrets: [String: String] = [:], retry: RetryPolicy = RetryPolicy(maximumAttempts: 4, backoff: .seconds(0), maximumBackoff: .seconds(0)),
        kafka: KafkaProducerDirectory = KafkaProducerDirectory(), deployments: [Deployment] = [],
        configure: (inout Dispatcher.Configuration) -> Void = { _ in }, configureRunner: (inout LocalRunner.Configuration) -> Void = { _ in }
    ) throws {
        let location: StoreLocation =
            ProcessInfo.processInfo.environment["TRIPLINE_TEST_STORE"] == "postgres"
            ? .postgres(url: try PostgresTestServer.freshDatabase()) : .sqlite(path: path, synchronous: "FULL")
        store = try location.open(logger: Logger(label: "test"), nodeName: "test-\(UUID().uuidString.prefix(8))")
        var runnerConfiguration = LocalRunner.Configuration(runsFolder: runsFolder)
        runnerConfiguration.terminationGrace = .seconds(2)
        runnerConfiguration.launcher = Self.launcher
        configureRunner(&runnerConfiguration)
        runner = LocalRunner(
            configuration: runnerConfiguration, store: store, events: sink, deployments: DeploymentDirectory(deployments),
            secrets: SecretResolver(environment: secrets), logger: Logger(label: "runner", factory: { _ in SwiftLogNoOpLogHandler() }),
            metricsFactory: NOOPMetricsHandler.instance)
        environment = ActionEnvironment(
            templates: StencilTemplates(), destinations: DestinationDirectory(destinations), secrets: SecretResolver(environment: secrets), events: sink,
            runner: runner)
        var configuration = Dispatcher.Configuration()
        configuration.retry = retry
        configure(&configuration)
        dispatcher = Dispatcher(
            outbox: store, handlers: .standard(http: HTTPTarget(client: client), kafka: kafka), environment: environment, configuration: configuration,
            logger: Logger(label: "dispatcher", factory: { _ in SwiftLogNoOpLogHandler() }), metricsFactory: NOOPMetricsHandler.instance)
    }

    /// `tripline exec-run`, as `tripline serve` starts runs (the test process's threads block SIGTERM too).
    static var launcher: [String] {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tripline"),
            repository.appendingPathComponent(".build/debug/tripline"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }.map { [$0.path, "exec-run"] } ?? []
    }

    deinit {
        store.close()
        runTask.withLock { $0?.cancel() }
        runner.stop()
        try? client.syncShutdown()
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: runsFolder)
    }

    /// Records a firing with `actions`, as the pipeline does, and wakes the dispatcher.
    @discardableResult
    func fire(_ actions: [Action], labels: [String: String] = [:], event: Event? = nil, cooldown: TimeSpan? = nil, at: Instant? = nil) async throws -> [String] {
        let number = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let triggering = event ?? TestEvents.event(number, "test.fired", at: Double(number), resource: ["prefect.resource.id": "test.resource.\(number)"])
        let firing = Firing(
            automationID: automationID, automationName: "test automation", triggerID: UUID(), triggeringEvent: triggering,
            at: at ?? Instant(seconds: Date().timeIntervalSince1970 + Double(number) / 1000), bucketingLabels: labels)
        try await store.write { transaction in
            _ = try transaction.insertEvent(triggering, received: firing.at)
            try transaction.recordFiring(firing, actions: actions, cooldown: cooldown)
        }
        dispatcher.wake.signal()
        return actions.indices.map { "\(firing.id.uuidString.lowercased())/\($0)" }
    }

    func start() {
        let dispatcher = self.dispatcher
        runTask.withLock { $0 = Task { try await dispatcher.run() } }
    }

    func stop() async {
        dispatcher.stop()
        _ = try? await runTask.withLock { $0 }?.value
        await stopRunner()
    }

    /// Starts the local runner (its recovery first: runs left Running are Crashed).
    func startRunner() {
        let runner = self.runner
        runnerTask.withLock { $0 = Task { try await runner.run() } }
    }

    /// Stops the local runner; runs still running end Crashed.
    func stopRunner() async {
        runner.stop()
        _ = try? await runnerTask.withLock { $0 }?.value
    }

    /// Waits until the run `id` is in a final state (or `timeout` passes); returns it.
    func finished(_ id: UUID, timeout: Duration = .seconds(20)) async throws -> FlowRun? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let run = try await store.flowRun(id: id), run.state.type.isFinal { return run }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await store.flowRun(id: id)
    }

    /// The flow-run state events collected so far, for one run.
    func stateEvents(_ id: UUID) -> [Event] {
        sink.all.filter { $0.resource.id == "prefect.flow-run.\(id.uuidString.lowercased())" && $0.event.hasPrefix("prefect.flow-run.") }
    }

    /// Waits until none of the deliveries is pending (or `timeout` passes); returns them all.
    func settle(timeout: Duration = .seconds(20)) async throws -> [Delivery] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let all = try await store.deliveries(automation: nil, status: nil, limit: 10_000)
            if !all.isEmpty, all.allSatisfy({ $0.status != .pending }) { return all }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await store.deliveries(automation: nil, status: nil, limit: 10_000)
    }
}

/// A JSON comparison that ignores key order and formatting, for "the same document as the fixture".
func sameJSON(_ a: String, _ b: String) -> Bool {
    guard let x = try? JSONValue.parse(a), let y = try? JSONValue.parse(b) else { return false }
    return x == y
}
