public import AsyncHTTPClient
internal import Foundation
internal import ServiceLifecycle
public import TriplineActions
public import TriplineCore

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
