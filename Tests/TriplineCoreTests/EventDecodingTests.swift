import Foundation
import Testing
import TriplineCore

@Suite struct EventDecodingTests {
    let valid: [String: JSONValue] = [
        "id": "00000000-0000-4000-8000-000000000001",
        "occurred": "2024-05-01T12:00:00.123456+02:00",
        "event": "prefect.flow-run.Failed",
        "resource": ["prefect.resource.id": "prefect.flow-run.1", "env": "prod"],
        "related": [["prefect.resource.id": "prefect.deployment.1", "prefect.resource.role": "deployment"]],
        "payload": ["n": 1],
        "unknown_top_level_key": "ignored, as Prefect does",
    ]

    func decode(_ changes: [String: JSONValue?]) -> Result<Event, TriplineError> {
        var object = valid
        for (key, value) in changes { object[key] = value }
        do { return .success(try Event.decode(.object(object))) } catch { return .failure(error) }
    }

    func failure(_ changes: [String: JSONValue?]) -> TriplineError? {
        if case .failure(let error) = decode(changes) { return error }
        return nil
    }

    @Test func decodesAValidEventAndConvertsTheOffset() throws {
        let event = try decode([:]).get()
        #expect(event.occurred.rfc3339 == "2024-05-01T10:00:00.123456Z")
        #expect(event.related[0].role == "deployment")
        #expect(event.payload["n"] == 1)
        let again = try Event.decode(event.jsonValue)
        #expect(again == event, "an event survives a round trip through its JSON")
    }

    @Test func everyFieldErrorNamesTheField() {
        #expect(failure(["id": nil])?.path == "id")
        #expect(failure(["id": "not-a-uuid"])?.path == "id")
        #expect(failure(["occurred": nil])?.path == "occurred")
        #expect(failure(["occurred": "yesterday"])?.path == "occurred")
        #expect(failure(["occurred": "2024-02-30T00:00:00Z"])?.path == "occurred", "February 30th does not exist")
        #expect(failure(["event": nil])?.path == "event")
        #expect(failure(["event": ""])?.path == "event")
        #expect(failure(["resource": ["env": "prod"]])?.path == "resource")
        #expect(failure(["resource": ["prefect.resource.id": ""]])?.path == "resource")
        #expect(failure(["resource": ["prefect.resource.id": "x", "n": 5]])?.path == "resource[\"n\"]")
        #expect(failure(["related": [["prefect.resource.id": "x"]]])?.path == "related[0]")
        #expect(failure(["related": [["prefect.resource.id": "x", "prefect.resource.role": "r", "flag": true]]])?.path == "related[0][\"flag\"]")
        #expect(failure(["payload": "text"])?.path == "payload")
        #expect(failure(["follows": "nope"])?.path == "follows")
    }

    @Test func enforcesPrefectsLimits() throws {
        var labels: [String: JSONValue] = ["prefect.resource.id": "x"]
        for index in 0..<500 { labels["l\(index)"] = "v" }
        #expect(failure(["resource": .object(labels)])?.code == .limitExceeded)
        let related = JSONValue.array((0..<101).map { _ in ["prefect.resource.id": "x", "prefect.resource.role": "r"] })
        #expect(failure(["related": related])?.code == .limitExceeded)
        let big = Data(("{\"payload\": \"" + String(repeating: "x", count: 1_500_001) + "\"}").utf8)
        #expect(throws: TriplineError.self) { try Event.decode(json: big) }
        do {
            _ = try Event.decode(json: big)
        } catch {
            #expect(error.code == .limitExceeded)
        }
    }

    @Test func malformedJSONIsAnErrorNotACrash() {
        for text in ["", "{", "[1,2]", "null", "{\"id\": }", "\u{0}"] {
            #expect(throws: TriplineError.self) { try Event.decode(json: Data(text.utf8)) }
        }
    }
}

@Suite struct InstantTests {
    @Test func parsesAndFormatsRFC3339() throws {
        let instant = try #require(Instant(rfc3339: "2024-05-01T12:00:00Z"))
        #expect(instant.rfc3339 == "2024-05-01T12:00:00Z")
        #expect(Instant(rfc3339: "2024-05-01 12:00:00")?.rfc3339 == "2024-05-01T12:00:00Z", "no offset means UTC")
        #expect(Instant(rfc3339: "2024-05-01T12:00:00.5-01:30")?.rfc3339 == "2024-05-01T13:30:00.500000Z")
        #expect(Instant(rfc3339: "1969-12-31T23:59:59Z")?.microseconds == -1_000_000)
        #expect(Instant(rfc3339: "2024-13-01T00:00:00Z") == nil)
        #expect(Instant(rfc3339: "2024-05-01T12:00:00Zjunk") == nil)
    }

    @Test func parsesDurationsAsPrefectAccepts() {
        #expect(TimeSpan(durationText: "600") == .seconds(600))
        #expect(TimeSpan(durationText: "PT10M") == .seconds(600))
        #expect(TimeSpan(durationText: "P1DT2H") == .seconds(93_600))
        #expect(TimeSpan(durationText: "0:10:00") == .seconds(600))
        #expect(TimeSpan(durationText: "1 day, 0:00:30") == .seconds(86_430))
        #expect(TimeSpan(durationText: "ten minutes") == nil)
    }
}
