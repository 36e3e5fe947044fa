import Testing

@testable import LKJWTLogic

struct HashedNameTests {
    /// Contract §4.2, V1–V8.
    @Test(arguments: [
        (["!roomid:example.com", "slot1234"], "O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"),
        (["@alice:example.com", "DEVICE123", "memberABC"], "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU"),
        (["!room:example.com", "m.call#"], "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"),
        (["!room:example.com", "m.call#ROOM"], "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs"),
        (["@alice:example.com", "DEVICE", "member-1"], "vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU"),
        (["!a<b>&c:example.com", "m.call#ROOM"], "SGxMm3ZXFKFIWdJM1qhVwHk+7QLWeWCAtF8LbPTlAj0"),
        (["@alice:example.com", "DEV<&>", "member<&>"], "cws4MVGmz+uEOzjXn/g2p0UWl3i6BWC1uG+IeoH529c"),
        (["!räum:example.com", "slot\u{2028}x"], "qI1Au8ZO5wXSKvdhXUK+qOX2HwAs0fjiExZbOVqXahQ"),
    ])
    func contractVectors(input: [String], expected: String) {
        #expect(HashedName.derive(input) == expected)
    }

    @Test func canonicalBytesKeepHTMLCharactersAndNonASCIIRaw() {
        #expect(CanonicalJSON.encode(.array([.string("!a<b>&c:example.com"), .string("m.call#ROOM")])) == #"["!a<b>&c:example.com","m.call#ROOM"]"#)
        #expect(Array(CanonicalJSON.encode(.array([.string("ä\u{2028}")])).utf8) == [0x5B, 0x22, 0xC3, 0xA4, 0xE2, 0x80, 0xA8, 0x22, 0x5D])
    }

    @Test func canonicalEscapesOnlyWhatJSONRequires() {
        let input = "q\"b\\\u{08}\u{09}\u{0A}\u{0C}\u{0D}\u{01}\u{1F}/\u{7F}"
        #expect(CanonicalJSON.encode(.string(input)) == #""q\"b\\\b\t\n\f\r\u0001\u001f/"# + "\u{7F}\"")
    }

    @Test func canonicalSortsObjectKeys() {
        let object = JSONValue.object([JSONMember("b", .integer(1)), JSONMember("a", .object([JSONMember("d", .null), JSONMember("c", .bool(true))]))])
        #expect(CanonicalJSON.encode(object) == #"{"a":{"c":true,"d":null},"b":1}"#)
    }

    @Test func worksWithTheBlackBoxExample() {
        #expect(HashedName.roomAlias(roomID: "!room:example.com", slotID: "m.call#") == "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY")
        #expect(HashedName.identity(userID: "@alice:example.com", deviceID: "DEVICE", memberID: "member-1") == "vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU")
        #expect(HashedName.legacyRoomAlias(roomID: "!room:example.com") == "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs")
        #expect(HashedName.legacyIdentity(userID: "@alice:example.com", deviceID: "DEVICE") == "@alice:example.com:DEVICE")
    }
}
