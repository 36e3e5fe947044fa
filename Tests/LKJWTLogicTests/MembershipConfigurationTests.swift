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

    static let noEffect = ConfigurationNotice(
        level: .warning, message: "LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS has no effect unless running as an application service")

    static func notices(_ extra: [String: String]) throws(ConfigurationError) -> [ConfigurationNotice] {
        try Configuration.parse(environment: minimal.merging(extra) { $1 }) { _ in "" }.notices
    }

    @Test func setWithoutApplicationServiceWarns() throws {
        #expect(try Self.notices(["LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS": "5"]).contains(Self.noEffect))
        #expect(try !Self.notices(["LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS": "0"]).contains(Self.noEffect))
        #expect(try !Self.notices([:]).contains(Self.noEffect), "the default must not warn every standalone deployment")
        let applicationService = ["LIVEKIT_AS_TOKEN": "as", "LIVEKIT_HS_TOKEN": "hs", "LIVEKIT_HS_SERVER_NAME": "example.org"]
        #expect(try !Self.notices(applicationService.merging(["LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS": "5"]) { $1 }).contains(Self.noEffect))
    }
}
