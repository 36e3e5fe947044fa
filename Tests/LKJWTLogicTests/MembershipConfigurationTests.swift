import Testing

@testable import LKJWTLogic

/// `LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS` (AS-MODE.md B4, notes §4.1, contract §2.3 row 14).
struct MembershipConfigurationTests {
    static let minimal = ["LIVEKIT_URL": "wss://sfu.example.com", "LIVEKIT_KEY": "devkey", "LIVEKIT_SECRET": "devsecret"]

    static func parse(_ extra: [String: String]) throws(ConfigurationError) -> Configuration {
        try Configuration.parse(environment: minimal.merging(extra) { $1 }) { _ in "" }.configuration
    }

    @Test(arguments: [("", 30), ("0", 0), ("2", 2), ("+45", 45), ("007", 7), ("-0", 0)])
    func interval(_ value: String, _ expected: Int) throws {
        #expect(try Self.parse(["LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS": value]).membershipCheckIntervalSeconds == expected)
    }

    @Test func defaultIsThirtySeconds() throws {
        #expect(try Self.parse([:]).membershipCheckIntervalSeconds == 30)
        #expect(try Self.parse([:]).description.contains("\nLIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS=30\n"))
    }

    @Test(arguments: ["-1", "abc", "1.5", " 5", "99999999999999999999"])
    func invalidIntervalStopsStartUp(_ value: String) {
        #expect(throws: ConfigurationError(message: "LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS must be a non-negative integer, got \"\(value)\"")) {
            try Self.parse(["LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS": value])
        }
    }
}
