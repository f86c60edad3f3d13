public import Foundation
public import Logging
public import CoreMetrics
import Synchronization
public import TriplineCore
public import TriplineKafka

/// The Kafka producers of the `kafka` destinations, one per destination, connected when the server starts. Each is
/// a service of the server (``services``), stopped after the dispatcher so that actions in flight can finish.
public final class KafkaProducerDirectory: Sendable {
    private let producers: [String: KafkaProducer]
    /// Why a destination has no producer (a secret that cannot be read, properties librdkafka refused).
    private let problems: [String: String]

    /// No producers.
    public init() {
        producers = [:]
        problems = [:]
    }

    /// Creates a producer for every `kafka` destination; a destination whose producer cannot be created is logged
    /// and its actions fail as configuration errors.
    public init(destinations: [Destination], secrets: SecretResolver, logger: Logger, metricsFactory: any MetricsFactory) {
        var producers: [String: KafkaProducer] = [:]
        var problems: [String: String] = [:]
        for destination in destinations where destination.kind == .kafka {
            do {
                var configuration = KafkaProducerConfiguration(bootstrapServers: destination.brokers)
                configuration.deliveryTimeout = .microseconds(destination.timeout.microseconds)
                for (key, value) in destination.properties {
                    configuration.additionalProperties[key] = try secrets.resolve(value, field: "destination \"\(destination.name)\" properties.\(key)")
                }
                var producerLogger = logger
                producerLogger[metadataKey: "destination"] = "\(destination.name)"
                producers[destination.name] = try KafkaProducer(configuration: configuration, logger: producerLogger, metricsFactory: metricsFactory)
            } catch let failure as ActionFailure {
                problems[destination.name] = failure.reason
                logger.error("kafka destination not connected", metadata: ["destination": "\(destination.name)", "error": "\(failure.reason)"])
            } catch {
                problems[destination.name] = "\(error)"
                logger.error("kafka destination not connected", metadata: ["destination": "\(destination.name)", "error": "\(error)"])
            }
        }
        self.producers = producers
        self.problems = problems
    }

    /// The producer of the destination `name`.
    /// - Throws: ``ActionFailure`` (configuration) when there is none.
    func producer(_ name: String) throws -> KafkaProducer {
        if let producer = producers[name] { return producer }
        if let problem = problems[name] { throw ActionFailure.configuration("kafka destination \"\(name)\" is not connected: \(problem)") }
        throw ActionFailure.configuration("kafka destination \"\(name)\" was not declared when the server started (kafka destinations connect at start)")
    }

    /// The producers, to run as services. Added to the server before the dispatcher, they stop after it (a service
    /// group stops its services in reverse order), so that actions still running can be confirmed.
    public var services: [KafkaProducer] { producers.keys.sorted().compactMap { producers[$0] } }
}

/// `kafka-produce`: a record to a topic of a `kafka` destination, with a templated `key`, `value` (a string as is,
/// an object as JSON) and `headers`, plus a `tripline-idempotency-key` header. The action counts as executed only once
/// the broker confirmed the record (idempotent producer, `acks=all`); failures are retried like other actions.
public struct KafkaProduceHandler: ActionHandler {
    public var actionTypes: [String] { ["kafka-produce"] }

    let producers: KafkaProducerDirectory

    /// Creates the handler over the server's producers.
    public init(producers: KafkaProducerDirectory) {
        self.producers = producers
    }

    public func run(_ execution: ActionExecution) async throws -> ActionSuccess {
        let destination = try execution.destination(of: [.kafka])
        let producer = try producers.producer(destination.name)
        guard let topic = try execution.render("topic"), !topic.isEmpty else { throw ActionFailure(.permanent, "topic: renders empty") }
        let key = try execution.render("key").map { Array($0.utf8) }
        var value: [UInt8]?
        switch execution.action.fields["value"] {
        case .string(let template)?: value = Array(try execution.render(template, field: "value").utf8)
        case .object(let object)?: value = Array(try execution.renderJSON(.object(object), field: "value").jsonText.utf8)
        default: value = nil
        }
        var headers = [KafkaHeader(key: "tripline-idempotency-key", text: execution.idempotencyKey)]
        if let extra = execution.action.fields["headers"]?.objectValue {
            for (name, template) in extra.sorted(by: { $0.key < $1.key }) {
                guard let text = template.stringValue else { throw ActionFailure(.permanent, "headers.\(name): must be a string") }
                headers.append(KafkaHeader(key: name, text: try execution.render(text, field: "headers.\(name)")))
            }
        }
        let report: KafkaDeliveryReport
        do {
            report = try await producer.produce(topic: topic, key: key, value: value, headers: headers)
        } catch let error as KafkaError {
            throw ActionFailure(.retriable, "kafka: \(error)")
        }
        var details: [String: JSONValue] = [
            "destination": .string(destination.name), "topic": .string(report.topic), "partition": .int(Int64(report.partition.rawValue)),
        ]
        if let offset = report.offset { details["offset"] = .int(offset) }
        return ActionSuccess(details: details)
    }
}
