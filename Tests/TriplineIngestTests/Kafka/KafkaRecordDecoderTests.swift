import Foundation
import Testing
import TriplineCore
import TriplineIngest
import TriplineKafka

/// Records of every format become the documented events; anything else is rejected with a reason, never a trap.
@Suite struct KafkaRecordDecoderTests {
    let received = Instant(rfc3339: "2026-11-23T10:00:00Z")!

    func record(_ value: [UInt8]?, offset: Int64 = 7, headers: [KafkaHeader] = [], timestamp: Date? = nil) -> KafkaConsumerMessage {
        KafkaConsumerMessage(topic: "orders", partition: KafkaPartition(rawValue: 2), offset: offset, key: Array("k".utf8), value: value, headers: headers, timestamp: timestamp)
    }

    func decode(_ format: KafkaSource.Format, _ record: KafkaConsumerMessage) -> Result<[Event], KafkaRejection> {
        KafkaRecordDecoder(sourceName: "orders", format: format).events(from: record, received: received)
    }

    @Test func aPrefectEventIsStoredAsItIs() throws {
        let json = #"{"id":"5b1e3f0a-7d7c-4a54-8d39-000000000001","occurred":"2026-11-23T09:00:00Z","event":"order.placed","resource":{"prefect.resource.id":"order.1"},"payload":{"total":3}}"#
        let events = try decode(.prefectEvent, record(Array(json.utf8))).get()
        #expect(events.count == 1)
        #expect(events[0].id == UUID(uuidString: "5b1e3f0a-7d7c-4a54-8d39-000000000001"))
        #expect(events[0].event == "order.placed")
        #expect(events[0].resource.id == "order.1")
        #expect(events[0].payload["total"] == .int(3))
        #expect(events[0].occurred == Instant(rfc3339: "2026-11-23T09:00:00Z"))
    }

    @Test func anEventWithoutIdGetsAStableIdFromItsPositionAndTheRecordTime() throws {
        let json = #"{"event":"order.placed","resource":{"prefect.resource.id":"order.1"}}"#
        let time = Date(timeIntervalSince1970: 1_790_000_000)
        let first = try decode(.prefectEvent, record(Array(json.utf8), offset: 7, timestamp: time)).get()[0]
        let again = try decode(.prefectEvent, record(Array(json.utf8), offset: 7, timestamp: time)).get()[0]
        let next = try decode(.prefectEvent, record(Array(json.utf8), offset: 8, timestamp: time)).get()[0]
        #expect(first.id == again.id, "the same record read twice is the same event")
        #expect(first.id != next.id)
        #expect(first.id == KafkaRecordDecoder.eventID(topic: "orders", partition: KafkaPartition(rawValue: 2), offset: 7))
        #expect(first.id.uuidString.lowercased().dropFirst(14).first == "5", "a name-based (version 5) UUID")
        #expect(first.occurred == Instant(seconds: 1_790_000_000))
        let untimed = try decode(.prefectEvent, record(Array(json.utf8))).get()[0]
        #expect(untimed.occurred == received)
    }

    @Test func poisonRecordsAreRejectedWithReasons() {
        let cases: [([UInt8]?, String)] = [
            (Array("{not json".utf8), "invalid_json"),
            (Array(#"{"event":"x"}"#.utf8), "invalid_event"),
            (Array(#"[1,2,3]"#.utf8), "invalid_event"),
            (Array(#"{"event":"x","resource":{"prefect.resource.id":"r"},"occurred":"yesterday"}"#.utf8), "invalid_event"),
            ([0xFF, 0xFE, 0x00, 0x01, 0xC3, 0x28], "invalid_json"),
            (nil, "empty"),
            ([], "empty"),
            (Array(repeating: UInt8(ascii: "a"), count: 2 * 1024 * 1024), "too_large"),
        ]
        for (value, reason) in cases {
            switch decode(.prefectEvent, record(value)) {
            case .success(let events): Issue.record("accepted \(events) for a \(reason) record")
            case .failure(let rejection):
                #expect(rejection.reason == reason, "\(rejection.detail)")
                #expect(!rejection.detail.isEmpty)
            }
        }
    }

    @Test func aStructuredCloudEventBecomesTheSameEventAsOverAWebhook() throws {
        let json = #"{"specversion":"1.0","id":"A234-1234-1234","source":"/mycontext","type":"com.example.someevent","time":"2018-04-05T17:31:00Z","subject":"larger-context","comexampleextension1":"value","datacontenttype":"application/json","data":{"appinfoA":"abc"}}"#
        let event = try decode(.cloudEvents, record(Array(json.utf8))).get()[0]
        #expect(event.event == "com.example.someevent")
        #expect(event.resource.id == "/mycontext")
        #expect(event.resource["cloudevents.subject"] == "larger-context")
        #expect(event.resource["cloudevents.comexampleextension1"] == "value")
        #expect(event.payload["data"]?[path: "appinfoA"] == .string("abc"))
        #expect(event.occurred == Instant(rfc3339: "2018-04-05T17:31:00Z"))
        #expect(event.id == UUID(name: "cloudevents:/mycontext\u{1F}A234-1234-1234"))
        #expect(event.related.first?.id == "tripline.kafka-source.orders")
    }

    @Test func aBinaryCloudEventTakesItsAttributesFromHeaders() throws {
        let headers = [
            KafkaHeader(key: "ce_specversion", text: "1.0"), KafkaHeader(key: "ce_id", text: "42"), KafkaHeader(key: "ce_source", text: "urn:orders"),
            KafkaHeader(key: "ce_type", text: "order.shipped"), KafkaHeader(key: "content-type", text: "application/json"),
        ]
        let event = try decode(.cloudEvents, record(Array(#"{"n":1}"#.utf8), headers: headers)).get()[0]
        #expect(event.event == "order.shipped")
        #expect(event.resource.id == "urn:orders")
        #expect(event.payload["data"]?[path: "n"] == .int(1))
        // Data is optional in a binary CloudEvent: a tombstone with ce_ headers is still an event.
        let bare = try decode(.cloudEvents, record(nil, headers: headers)).get()
        #expect(bare.count == 1)
    }

    @Test func invalidCloudEventsAreRejected() {
        for json in [#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#, #"{"specversion":"1.0","source":"s","type":"t"}"#, #""text""#] {
            guard case .failure(let rejection) = decode(.cloudEvents, record(Array(json.utf8))) else {
                Issue.record("accepted \(json)")
                continue
            }
            #expect(rejection.reason == "invalid_cloudevent")
        }
    }

    @Test func s3NotificationsInEveryShapeBecomeObjectEvents() throws {
        let direct = try FixtureFiles.bytes("aws/s3/doc-objectcreated-put.json")
        let events = try decode(.awsS3, record(direct)).get()
        #expect(events.count == 1)
        #expect(events[0].event.hasPrefix("aws.s3.ObjectCreated"))
        #expect(events[0].related.contains { $0.id == "tripline.kafka-source.orders" })
        let again = try decode(.awsS3, record(direct, offset: 99)).get()
        #expect(again[0].id == events[0].id, "an S3 record's event id comes from the notification, not the Kafka position")

        let minimal = #"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2026-11-23T10:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"landing"},"object":{"key":"in/file.csv","size":12,"eTag":"abc","sequencer":"0055AED6DCD90281E5"}}}]}"#
        let minimalEvents = try decode(.awsS3, record(Array(minimal.utf8))).get()
        #expect(minimalEvents.map(\.event) == ["aws.s3.ObjectCreated:Put"])
        #expect(minimalEvents.first?.resource.id == "aws.s3.bucket.landing")

        let sqs = try decode(.awsS3, record(try FixtureFiles.bytes("aws/sqs/powertools-s3SqsEvent.json"))).get()
        #expect(!sqs.isEmpty)
        let test = try decode(.awsS3, record(try FixtureFiles.bytes("aws/s3/doc-test-event.json"))).get()
        #expect(test.isEmpty, "s3:TestEvent is acknowledged without an event")
        guard case .failure(let rejection) = decode(.awsS3, record(Array(#"{"hello":"world"}"#.utf8))) else {
            Issue.record("a non-S3 document was accepted")
            return
        }
        #expect(rejection.reason == "not_s3")
    }
}
