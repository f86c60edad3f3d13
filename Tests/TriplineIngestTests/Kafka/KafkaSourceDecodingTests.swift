import Foundation
import Testing
import TriplineCore
import TriplineIngest
import TriplineTemplates

/// Source declarations in rules/sources: every problem reported with its place, secrets never inline.
@Suite struct KafkaSourceDecodingTests {
    @Test func aFullDeclarationIsRead() throws {
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("tripline-kafka-key-\(UUID().uuidString).pem")
        try "key-from-file\n".write(to: keyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: keyFile) }
        let loaded = KafkaSource.load(
            text: """
                name: orders
                type: kafka
                brokers: [a:9092, "b:9092"]
                topics: [orders.events]
                group_id: g
                start: latest
                format: cloudevents
                dead_letter_topic: orders.rejected
                batch_size: 100
                properties:
                  security.protocol: SASL_SSL
                  sasl.password: env:KAFKA_PASSWORD
                  ssl.key.pem: file:\(keyFile.path)
                  fetch.wait.max.ms: 50
                """, file: "orders.yaml")
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        let source = try #require(loaded.sources.first)
        #expect(source.brokers == ["a:9092", "b:9092"])
        #expect(source.groupID == "g")
        #expect(!source.startFromEarliest)
        #expect(source.format == .cloudEvents)
        #expect(source.deadLetterTopic == "orders.rejected")
        #expect(source.batchSize == 100)
        #expect(source.properties["sasl.password"] == .secret(.environment("KAFKA_PASSWORD")))
        #expect(source.properties["fetch.wait.max.ms"] == .plain("50"))
        let resolved = try source.resolvedProperties(environment: ["KAFKA_PASSWORD": "pw-from-env"])
        #expect(resolved["sasl.password"] == "pw-from-env")
        #expect(resolved["ssl.key.pem"] == "key-from-file")
        #expect(throws: TriplineError.self) { _ = try source.resolvedProperties(environment: [:]) }
        do {
            _ = try source.resolvedProperties(environment: [:])
        } catch {
            #expect(error.description.contains("KAFKA_PASSWORD"))
            #expect(error.path == "properties.sasl.password")
        }
    }

    @Test func defaultsAreAGroupNamedAfterTheSourceFromTheEarliestRecord() throws {
        let source = try #require(KafkaSource.load(text: "{name: s, brokers: 'a:1,b:2', topic_pattern: 'orders\\..*', format: prefect-event}").sources.first)
        #expect(source.groupID == "tripline-s")
        #expect(source.startFromEarliest)
        #expect(source.brokers == ["a:1", "b:2"])
        #expect(source.topicPattern == "orders\\..*")
        #expect(source.enabled)
    }

    @Test func everyProblemIsReportedWithItsPlaceAndNoSecretIsEchoed() {
        let loaded = KafkaSource.load(
            text: """
                name: bad name!
                brokers: [nohost]
                topics: [a]
                topic_pattern: b.*
                start: middle
                format: raw
                mapping: {resource: {name: x}, extra: 1}
                properties:
                  sasl.password: hunter2-inline-secret
                  group.id: other
                colour: blue
                """, file: "bad.yaml")
        #expect(loaded.sources.isEmpty)
        let text = loaded.errors.map(\.description).joined(separator: "\n")
        for path in ["name", "brokers", "topics", "start", "mapping.event", "mapping.resource", "mapping.extra", "properties.sasl.password", "properties.group.id", "colour"] {
            #expect(loaded.errors.contains { $0.path == path }, "no problem reported for \(path):\n\(text)")
        }
        #expect(loaded.errors.allSatisfy { $0.location?.file == "bad.yaml" && ($0.location?.line ?? 0) > 0 })
        #expect(!text.contains("hunter2"), "a secret written inline is never repeated")
    }

    @Test func aRawSourceNeedsAMappingAndOnlyItTakesOne() throws {
        let missing = KafkaSource.load(text: "{name: s, brokers: [a:1], topics: [t], format: raw}")
        #expect(missing.errors.contains { $0.path == "mapping" && $0.code == .missingField })
        let misplaced = KafkaSource.load(text: "{name: s, brokers: [a:1], topics: [t], format: prefect-event, mapping: {event: e, resource: {prefect.resource.id: r}}}")
        #expect(misplaced.errors.contains { $0.path == "mapping" })
        let good = KafkaSource.load(text: "{name: s, brokers: [a:1], topics: [t], format: raw, mapping: {event: 'x.{{ value.kind }}', resource: {prefect.resource.id: 'r.{{ key }}'}, id: '{{ headers.id }}'}}")
        #expect(good.errors.isEmpty, "\(good.errors)")
        #expect(good.sources.first?.mapping == KafkaSource.RawMapping(event: "x.{{ value.kind }}", resource: ["prefect.resource.id": "r.{{ key }}"], id: "{{ headers.id }}"))
    }

    @Test func brokenMappingTemplatesAreNamedByField() throws {
        let loaded = KafkaSource.load(
            text: "{name: s, brokers: [a:1], topics: [t], format: raw, mapping: {event: 'x.{% endfor %}', resource: {prefect.resource.id: '{% if %}'}}}",
            file: "raw.yaml")
        #expect(loaded.errors.isEmpty, "the shape is right")
        let source = try #require(loaded.sources.first)
        let problems = source.templateProblems(StencilTemplates())
        #expect(Set(problems.map(\.path)) == ["mapping.event", "mapping.resource.prefect.resource.id"], "\(problems)")
        #expect(problems.allSatisfy { $0.location?.file == "raw.yaml" })
        var fine = source
        fine.mapping = KafkaSource.RawMapping(event: "x.{{ value.kind }}", resource: ["prefect.resource.id": "r"])
        #expect(fine.templateProblems(StencilTemplates()).isEmpty)
    }

    @Test func unknownFormatsAndTypesAreNamed() {
        let loaded = KafkaSource.load(text: "{name: s, type: kinesis, brokers: [a:1], topics: [t], format: avro}")
        #expect(loaded.errors.contains { $0.code == .unknownType && $0.path == "type" })
        #expect(loaded.errors.contains { $0.code == .unknownType && $0.path == "format" && ($0.hint ?? "").contains("prefect-event") })
    }

    @Test func theShippedExampleIsValidAndDisabled() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../rules/sources/orders-kafka.yaml").standardizedFileURL
        let loaded = KafkaSource.load(text: try String(contentsOf: file, encoding: .utf8), file: file.path)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        #expect(loaded.sources.count == 1)
        #expect(loaded.sources.allSatisfy { !$0.enabled }, "serve must start on a machine without a broker")
    }
}
