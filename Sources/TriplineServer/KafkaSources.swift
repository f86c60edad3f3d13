internal import Foundation
public import Logging
public import CoreMetrics
public import TriplineCore
public import TriplineIngest

extension EventPipeline: KafkaEventSink {
    /// Stores events read from Kafka; returns once they are committed (the source then stores the records' offsets).
    public nonisolated func ingest(_ events: [Event]) async throws {
        _ = try await submit(events)
    }
}

/// The Kafka sources declared in the rules folder's `sources/`.
public enum KafkaSources {
    /// Reads every source declaration under `rulesPath`.
    /// - Throws: A ``TriplineError`` for the first problem (every problem is logged), or when two sources share a name.
    public static func load(rulesPath: String, logger: Logger, templates: (any TemplateRenderer)? = nil) throws(TriplineError) -> [KafkaSource] {
        var sources: [KafkaSource] = []
        var errors: [TriplineError] = []
        for file in try RulesLoader.classifiedRuleFiles([rulesPath]) where file.kind == .sources {
            let loaded = KafkaSource.load(text: try RulesLoader.text(file.path), file: file.path)
            sources += loaded.sources
            errors += loaded.errors
            if let templates { errors += loaded.sources.flatMap { $0.templateProblems(templates) } }
        }
        var seen: [String: SourceLocation?] = [:]
        for source in sources {
            if let other = seen[source.name] {
                errors.append(
                    TriplineError(
                        .invalidValue, "another source is also named \"\(source.name)\"", path: "name", location: source.location,
                        hint: other.map { "first declared at \($0)" }))
            }
            seen[source.name] = source.location
        }
        for error in errors { logger.error("invalid kafka source: \(error)") }
        if let first = errors.first { throw first }
        return sources
    }

    /// The services of the enabled sources, feeding `sink`.
    /// - Throws: A ``TriplineError`` naming a source whose secret reference cannot be read or whose properties
    ///   librdkafka refuses (never a secret's value).
    public static func services(
        _ sources: [KafkaSource], sink: any KafkaEventSink, logger: Logger, metricsFactory: any MetricsFactory, templates: any TemplateRenderer
    ) throws(TriplineError) -> [KafkaSourceService] {
        var services: [KafkaSourceService] = []
        for source in sources where source.enabled {
            do {
                services.append(try KafkaSourceService(source: source, sink: sink, logger: logger, metricsFactory: metricsFactory, templates: templates))
            } catch let error as TriplineError {
                throw TriplineError(error.code, "kafka source \(source.name): \(error.message)", location: error.location ?? source.location)
            } catch {
                throw TriplineError(.invalidValue, "kafka source \(source.name): \(error)", location: source.location)
            }
        }
        return services
    }
}
