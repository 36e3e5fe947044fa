import Testing
@testable import LKJWTLogic

struct AccessPolicyTests {
    @Test(arguments: [
        ("", AccessPolicy.everyone),
        ("*", .everyone),
        (" * ", .everyone),
        (",*,", .everyone),
        (" , \t\n", .everyone),
        ("*, a", .servers(["*", "a"])),
        ("* *", .servers(["*", "*"])),
        ("example.org", .servers(["example.org"])),
        (" a,b  c ", .servers(["a", "b", "c"])),
        ("a,,b\tc\nd\r\ne", .servers(["a", "b", "c", "d", "e"])),
        ("a\u{00A0}b\u{2003}c", .servers(["a", "b", "c"])),
        ("matrix.example.org:8448,[2001:db8::1]:1234", .servers(["matrix.example.org:8448", "[2001:db8::1]:1234"])),
        ("**", .servers(["**"])),
    ])
    func parse(_ value: String, _ expected: AccessPolicy) {
        #expect(AccessPolicy.parse(value) == expected)
    }

    @Test func everyoneHasFullAccess() {
        let decision = AccessPolicy.everyone.evaluate(serverName: "anything.example")
        #expect(decision == AccessDecision(access: .full, reason: "every homeserver has full access"))
        #expect(decision.isFull)
    }

    @Test func listedServerHasFullAccess() {
        let decision = AccessPolicy.parse("example.com, example.org").evaluate(serverName: "example.org")
        #expect(decision.access == .full)
        #expect(decision.isFull)
        #expect(decision.reason == "example.org is listed in LIVEKIT_FULL_ACCESS_HOMESERVERS")
    }

    @Test func unlistedServerIsRestricted() {
        let decision = AccessPolicy.parse("example.com").evaluate(serverName: "example.org")
        #expect(decision.access == .restricted)
        #expect(!decision.isFull)
        #expect(decision.reason == "example.org is not listed in LIVEKIT_FULL_ACCESS_HOMESERVERS")
    }

    @Test(arguments: [
        "Example.org",  // case-sensitive
        "example.org:443",  // ports included
        "example.org.",
        " example.org",
        "*",
        "",
    ])
    func matchingIsExact(_ serverName: String) {
        #expect(!AccessPolicy.servers(["example.org"]).evaluate(serverName: serverName).isFull)
    }

    @Test func starInsideAListIsNotAWildcard() {
        let policy = AccessPolicy.parse("*, a")
        #expect(policy.evaluate(serverName: "a").isFull)
        #expect(!policy.evaluate(serverName: "b").isFull)
        #expect(policy.evaluate(serverName: "*").isFull)
    }

    @Test func accessRawValuesAreTheLogFieldValues() {
        #expect(AccessDecision.Access.full.rawValue == "full")
        #expect(AccessDecision.Access.restricted.rawValue == "restricted")
    }

    @Test(arguments: [
        (AccessPolicy.everyone, "*"),
        (.servers(["a"]), "a"),
        (.servers(["a", "b:8448"]), "a,b:8448"),
    ])
    func description(_ policy: AccessPolicy, _ expected: String) {
        #expect(policy.description == expected)
        #expect(AccessPolicy.parse(policy.description) == policy)
    }
}
