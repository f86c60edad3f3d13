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

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: TriplineError.self) { try JSONValue.parse(Data([0x22, 0xFF, 0xFE, 0x22])) }
        #expect(throws: TriplineError.self) { try JSONValue.parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)) }
        #expect(throws: Never.self) { try JSONValue.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)) }
    }
}
