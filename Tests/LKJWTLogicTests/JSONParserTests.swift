import Testing

@testable import LKJWTLogic

struct JSONParserTests {
    @Test func parsesNestedDocumentsKeepingOrderAndLiterals() throws {
        let value = try JSONParser.parse(#" {"b": [1, -2.5e3, true, false, null], "a": {"x": "y"}} "#)
        #expect(value == .object([
            JSONMember("b", .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null])),
            JSONMember("a", .object([JSONMember("x", .string("y"))])),
        ]))
    }

    @Test func duplicateMembersLastOneWins() throws {
        #expect(try JSONParser.parse(#"{"a":1,"a":2}"#)["a"] == .number("2"))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONParser.parse(#""\"\\\/\b\f\n\r\t\u00e4\ud83d\ude00""#)
        #expect(value == .string("\"\\/\u{08}\u{0C}\n\r\tä😀"))
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\"}", "{a:1}", "'x'", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul",
        "{} x", "{}{}", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\u{01}b\"", "\"unterminated",
        "NaN", "Infinity", "[1 2]",
    ])
    func rejectsMalformedInput(text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() throws {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        // Before and after an escape, in a key, and outside any string.
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0xC3, 0x5C, 0x6E, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x7B, 0x22, 0xFE, 0x22, 0x3A, 0x31, 0x7D]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x5B, 0xFF, 0x5D]) }
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse([0x20, 0xC2, 0xA0, 0x31]) }
        // Valid multi-byte text around an escape stays whole.
        #expect(try JSONParser.parse(Array("\"é\\n😀\"".utf8)) == .string("é\n😀"))
    }

    @Test func boundsNestingInsteadOfExhaustingTheStack() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
        let allowed = String(repeating: "[", count: JSONParser.maximumDepth) + String(repeating: "]", count: JSONParser.maximumDepth)
        var value = try JSONParser.parse(allowed)
        var depth = 0
        while case .array(let items) = value {
            depth += 1
            guard let inner = items.first else { break }
            value = inner
        }
        #expect(depth == JSONParser.maximumDepth)
    }

    @Test func serialisationRoundTrips() throws {
        let text = #"{"a":[1,"x\n",null,{"b":false}],"c":"ä/"}"#
        #expect(try JSONParser.parse(text).serialized() == text)
    }

    @Test func int64ValueOnlyForIntegerLiterals() throws {
        #expect(try JSONParser.parse("8000").int64Value == 8000)
        #expect(try JSONParser.parse("8000.0").int64Value == nil)
        #expect(try JSONParser.parse("8e3").int64Value == nil)
        #expect(try JSONParser.parse("9223372036854775808").int64Value == nil)
        #expect(try JSONParser.parse("-9223372036854775808").int64Value == Int64.min)
    }
}
