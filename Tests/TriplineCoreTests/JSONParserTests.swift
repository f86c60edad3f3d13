import Foundation
import Testing
import TriplineCore

@Suite struct JSONParserTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5, 1e3, true, false, null, "x"], "b": {}, "c": [], "big": 123456789012345678901} "#)
        #expect(value["a"] == [1, -2.5, 1000.0, true, false, nil, "x"])
        #expect(value["b"] == .object([:]))
        #expect(value["c"] == .array([]))
        #expect(value["big"]?.number == 123456789012345678901.0, "an integer beyond Int64 becomes a double")
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONValue.parse(#"["a\"b\\c\/d\n\t", "\u00e9\u4e2d", "\ud83d\ude00", "é直接"]"#)
        #expect(value == ["a\"b\\c/d\n\t", "é中", "😀", "é直接"])
    }

    @Test func writingAndParsingRoundTrip() throws {
        let original: JSONValue = ["text": "quote \" backslash \\ newline \n tab \t control \u{01} é 😀", "n": 42, "list": [1.5, nil, false]]
        #expect(try JSONValue.parse(original.jsonText) == original)
    }

    @Test func rejectsMalformedInputWithAPosition() {
        let cases = ["", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "tru", "01", "1.", "\"unterminated", "\"bad \\x escape\"", "[1] 2", "\"tab\tinside\""]
        for text in cases {
            do {
                _ = try JSONValue.parse(text)
                Issue.record("\(text.debugDescription) should not parse")
            } catch {
                #expect(error.code == .invalidJSON)
                #expect(error.reason.contains("line"), "\(error.reason)")
            }
        }
        do {
            _ = try JSONValue.parse("{\n  \"a\": [1,\n  ]\n}")
        } catch {
            #expect(error.reason.contains("line 3"), "\(error.reason)")
        }
    }

    /// Strings are scanned eight bytes at a time: every special byte must be seen wherever it falls in a word.
    @Test func findsQuotesEscapesControlAndNonASCIIBytesAtEveryOffset() throws {
        for length in 0..<20 {
            for position in 0...length {
                let before = String(repeating: "a", count: position)
                let after = String(repeating: "b", count: length - position)
                #expect(try JSONValue.parse("\"\(before)\"") == .string(before))
                #expect(try JSONValue.parse(#"["\#(before)\"\#(after)", 1]"#) == [.string(before + "\"" + after), 1])
                #expect(try JSONValue.parse(#"["\#(before)\\\#(after)"]"#) == [.string(before + "\\" + after)])
                #expect(try JSONValue.parse("[\"\(before)é\(after)\", \"\(after)\"]") == [.string(before + "é" + after), .string(after)])
                #expect(throws: TriplineError.self) { try JSONValue.parse("\"\(before)\u{01}\(after)\"") }
                #expect(throws: TriplineError.self) { try JSONValue.parse(Data(Array("\"\(before)".utf8) + [0xFF] + Array("\(after)\"".utf8))) }
                #expect(throws: TriplineError.self) { try JSONValue.parse("\"\(before)\(after)") }
                let raw = try RawJSONObject(validating: Array("{\"k\(before)\": \"\(after)é\\n\"}".utf8))
                #expect(raw["k" + before] == .string(after + "é\n"))
            }
        }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: TriplineError.self) { try JSONValue.parse(Data([0x22, 0xFF, 0xFE, 0x22])) }
        #expect(throws: TriplineError.self) { try JSONValue.parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect(throws: Never.self) { try JSONValue.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
    }
}

@Suite struct RawJSONObjectTests {
    /// Every webhook fixture body that is a JSON object: the raw object agrees with the parser on the value, and each top-level member
    /// and each nested path looked up without parsing equals the parsed one.
    @Test func agreesWithTheParserOnEveryFixtureBody() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../TriplineIngestTests/Fixtures").standardized
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL }.filter { $0.pathExtension == "json" } ?? []
        var checked = 0
        for file in files {
            let bytes = Array(try Data(contentsOf: file))
            guard case .object(let parsed)? = try? JSONValue.parse(Data(bytes)) else { continue }
            let raw = try RawJSONObject(validating: bytes)
            #expect(raw.value == parsed, "\(file.lastPathComponent)")
            for (key, value) in parsed {
                #expect(raw[key] == value, "\(file.lastPathComponent): \(key)")
                if case .object(let inner) = value {
                    for (innerKey, innerValue) in inner where !innerKey.contains(".") && !key.contains(".") {
                        #expect(raw[path: "\(key).\(innerKey)"] == innerValue, "\(file.lastPathComponent): \(key).\(innerKey)")
                    }
                }
            }
            #expect(try JSONValue.parse(Data(raw.bytes)) == .object(parsed))
            checked += 1
        }
        #expect(checked >= 20, "fixtures found under \(root.path): \(checked)")
    }

    @Test func rejectsWhatTheParserRejectsWithTheSameMessage() {
        let cases = [
            "", "{", "{\"a\":[1,]}", "{\"a\" 1}", "{\"a\":1,}", "{\"a\":tru}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":\"unterminated}",
            "{\"a\":\"bad \\x escape\"}", "{\"a\":\"bad \\u12 escape\"}", "{} 2", "{\"a\":\"tab\tinside\"}", "{\n \"a\": [1,\n ]\n}",
            "{\"a\":\"\u{FF}\"}",
        ]
        for text in cases {
            var bytes = Array(text.utf8)
            if text.contains("\u{FF}") { bytes = [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D] }
            let parserError: TriplineError?
            do {
                _ = try JSONValue.parse(Data(bytes))
                parserError = nil
            } catch { parserError = error }
            do {
                _ = try RawJSONObject(validating: bytes)
                Issue.record("\(text.debugDescription) should be rejected")
            } catch {
                #expect(error.code == .invalidJSON, "\(text.debugDescription)")
                #expect(error.reason == parserError?.reason, "\(text.debugDescription)")
            }
        }
        let deep = Array((String(repeating: "{\"a\":", count: 600) + "1" + String(repeating: "}", count: 600)).utf8)
        #expect(throws: TriplineError.self) { try RawJSONObject(validating: deep) }
    }

    @Test func namesTheKindOfAValueThatIsNotAnObject() {
        for (text, kind) in [("[1]", "an array"), (" \"x\" ", "a string"), ("3", "a number"), ("null", "null")] {
            do {
                _ = try RawJSONObject(validating: Array(text.utf8))
                Issue.record("\(text) is not an object")
            } catch {
                #expect(error.code == .invalidValue)
                #expect(error.reason == "must be a JSON object, not \(kind)")
            }
        }
    }

    @Test func looksUpMembersAsParsingWouldKeepThem() throws {
        let text = #" {"a": 1, "b": {"c": {"d": "deep"}, "c": {"d": "last"}, "e\u0066": true}, "a": 2, "s": "é\n", "l": [1, {"x": 1}]} "#
        let raw = try RawJSONObject(validating: Array(text.utf8))
        #expect(raw["a"] == 2, "the last of duplicated keys, as parsing keeps")
        #expect(raw[path: "b.c.d"] == "last")
        #expect(raw[path: "b.ef"] == true, "an escaped key matches its decoded name")
        #expect(raw["s"] == "é\n")
        #expect(raw[path: "l.x"] == nil, "paths go through objects only")
        #expect(raw[path: "b.missing"] == nil)
        #expect(raw[path: "a.b"] == nil)
        #expect(raw.value == (try JSONValue.parse(text)).objectValue)
        #expect(String(decoding: raw.bytes, as: UTF8.self) == text.trimmingCharacters(in: .whitespaces))
    }

    @Test func anEventStoresARawPayloadAsReceivedAndReadsBackTheSameEvent() throws {
        let body = #"{"ref":"refs/heads/main","n":1.50,"nested":{"k":["v",null]},"esc":"\u00e9"}"#
        let raw = try RawJSONObject(validating: Array(body.utf8))
        let event = Event(
            id: UUID(), occurred: Instant(seconds: 1_700_000_000), event: "github.push", resource: Resource(["prefect.resource.id": "r"]),
            related: [Resource(["prefect.resource.id": "s", "prefect.resource.role": "sender"])], rawPayload: raw, follows: UUID())
        let stored = event.storageText
        #expect(stored.contains(#""payload":"# + body), "the payload's text is copied, not re-encoded")
        let decoded = try Event.decode(json: Data(stored.utf8))
        #expect(decoded == event)
        #expect(decoded.payload == event.payload)
        var valued = event
        valued.payload = event.payload
        #expect(valued.rawPayload == nil)
        #expect(valued == event, "an event compares by payload value, however the payload is kept")
        #expect(try Event.decode(json: Data(valued.storageText.utf8)) == event)
    }
}
