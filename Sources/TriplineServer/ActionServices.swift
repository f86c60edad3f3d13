internal import AsyncHTTPClient
internal import Foundation
internal import ServiceLifecycle
internal import TriplineActions
public import TriplineCore
internal import TriplineStorage

/// Hands the action layer's events to the pipeline, so that they are stored and evaluated like any other.
public struct PipelineEventSink: EventSink {
    let pipeline: EventPipeline

    /// Creates the sink.
    public init(pipeline: EventPipeline) {
        self.pipeline = pipeline
    }

    public func emit(_ events: [Event]) async throws {
        _ = try await pipeline.submitInternal(events)
    }
}

/// Records the dispatcher's results in the pipeline's group commit, together with the action events, and then
/// releases the entries' claims.
struct PipelineOutboxRecorder: OutboxRecorder {
    let pipeline: EventPipeline
    let store: any TriplineStore

    func record(_ results: [OutboxResult], events: [Event]) async throws {
        // Released whether or not the commit worked: entries whose results were not stored are still pending and
        // run again (at least once).
        defer { store.releaseClaims(results.map(\.entryID)) }
        _ = try await pipeline.submitInternal(events, outboxResults: results)
    }
}

/// Lets `pause-automation` / `resume-automation` change the catalog.
struct CatalogAutomationControl: AutomationControl {
    let catalog: AutomationCatalog

    func setEnabled(_ automationID: UUID, _ enabled: Bool) async throws {
        try await catalog.setActive(automationID, enabled)
    }
}

/// Owns the server's one HTTP client: shuts it down after the services that use it stopped.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

/// Closes the store's connections after every other service stopped.
struct StoreService: Service {
    let store: any TriplineStore

    func run() async throws {
        try? await gracefulShutdown()
        store.close()
    }
}
