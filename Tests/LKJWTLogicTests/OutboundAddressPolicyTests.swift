import Testing

@testable import LKJWTLogic

private func address(_ text: String) throws -> IPAddress {
    try #require(IPAddress(text))
}

private let minimal = ["LIVEKIT_URL": "wss://sfu.example.com", "LIVEKIT_KEY": "devkey", "LIVEKIT_SECRET": "devsecret"]

private func parse(_ extra: [String: String]) throws(ConfigurationError) -> (configuration: Configuration, notices: [ConfigurationNotice]) {
    try Configuration.parse(environment: minimal.merging(extra) { $1 }) { path in throw ConfigurationError(message: "no file \(path)") }
}

private func parseError(_ extra: [String: String]) -> String? {
    do {
        _ = try parse(extra)
        return nil
    } catch {
        return error.message
    }
}

struct OutboundAddressPolicyTests {
    // MARK: Addresses and ranges

    @Test(arguments: ["0.0.0.0", "1.2.3.4", "255.255.255.255", "::", "::1", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1:2:3:4"])
    func addressesInetPtonAccepts(text: String) {
        let address = IPAddress(text)
        #expect(address?.bytes.count == (text.contains(":") ? 16 : 4))
        // These are written in inet_ntop's own form, so they read back unchanged.
        #expect(address?.description == text)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "0x7f.0.0.1", "2130706433", "127.1", " 1.2.3.4", "1.2.3.4 ",
        "[::1]", "fe80::1%lo", ":::1", "1::2::3", "localhost", "1.2.3.4:80", "１.2.3.4",
    ])
    func anythingElseIsNoAddress(text: String) {
        #expect(IPAddress(text) == nil)
        #expect(IPRange.parse(text) == nil)
    }

    @Test func aBareAddressIsARangeOfOne() throws {
        let v4 = try #require(IPRange.parse("192.0.2.7"))
        #expect(v4.description == "192.0.2.7/32")
        #expect(v4.contains(try address("192.0.2.7")))
        #expect(!v4.contains(try address("192.0.2.8")))
        let v6 = try #require(IPRange.parse("2001:db8::7"))
        #expect(v6.description == "2001:db8::7/128")
    }

    @Test func hostBitsAfterThePrefixAreCleared() throws {
        let range = try #require(IPRange.parse("10.1.2.3/8"))
        #expect(range.description == "10.0.0.0/8")
        #expect(range == IPRange.parse("10.0.0.0/8"))
        #expect(try #require(IPRange.parse("fe80::ffff/10")).description == "fe80::/10")
        #expect(try #require(IPRange.parse("100.64.0.0/10")).contains(try address("100.127.255.255")))
        #expect(!(try #require(IPRange.parse("100.64.0.0/10")).contains(try address("100.128.0.0"))))
    }

    @Test(arguments: ["10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0.0/ 8",
                      "::/129", "::/0128", "/8", "10.0.0.0/0x8", "10.0.0.0/1000"])
    func prefixesAreDecimalWithinTheFamily(text: String) {
        #expect(IPRange.parse(text) == nil)
    }

    @Test func zeroPrefixesCoverTheirWholeFamily() throws {
        let all4 = try #require(IPRange.parse("0.0.0.0/0"))
        #expect(all4.contains(try address("203.0.113.9")))
        #expect(!all4.contains(try address("2001:db8::1")))
        let all6 = try #require(IPRange.parse("::/0"))
        #expect(all6.contains(try address("2001:db8::1")))
        #expect(!all6.contains(try address("203.0.113.9")))
    }

    @Test func ipv4MappedIPv6AddressesAreCheckedAsIPv4() throws {
        let loopback = try #require(IPRange.parse("127.0.0.0/8"))
        #expect(loopback.contains(try address("::ffff:127.0.0.1")))
        #expect(loopback.contains(try address("::ffff:7f00:1")))
        #expect(!loopback.contains(try address("::1")))
        #expect(!loopback.contains(try address("::127.0.0.1")))  // IPv4-compatible, not mapped
        // A mapped range is the IPv4 range it covers.
        let mapped = try #require(IPRange.parse("::ffff:10.0.0.0/104"))
        #expect(mapped.description == "10.0.0.0/8")
        #expect(mapped.contains(try address("10.9.9.9")))
    }

    // MARK: The policy

    @Test func theDefaultBlocklistIsExactlyTheContractsList() {
        #expect(OutboundAddressPolicy.defaultBlocklist.map(\.description) == [
            "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
            "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
            "224.0.0.0/4", "0.0.0.0/8", "::1/128", "::/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
        ])
    }

    @Test(arguments: [
        "127.0.0.1", "127.255.255.254", "10.20.30.40", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1",
        "169.254.169.254", "0.0.0.0", "224.0.0.1", "239.255.255.255", "198.18.0.1", "192.0.0.8", "::1", "::",
        "fe80::1", "fd00::1", "fc00::1", "ff02::1", "2001:db8::1", "fec0::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
    ])
    func theDefaultPolicyBlocksPrivateAndSpecialAddresses(text: String) throws {
        #expect(!OutboundAddressPolicy.standard.permits(try address(text)))
    }

    @Test(arguments: ["8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "192.169.0.1", "2606:4700::1111",
                      "2001:4860:4860::8888", "::ffff:8.8.8.8", "240.0.0.1"])
    func theDefaultPolicyPermitsPublicAddresses(text: String) throws {
        #expect(OutboundAddressPolicy.standard.permits(try address(text)))
    }

    @Test func theAllowlistWinsOverTheBlocklist() throws {
        let policy = OutboundAddressPolicy(
            blocklist: OutboundAddressPolicy.defaultBlocklist, allowlist: [try #require(IPRange.parse("127.0.0.1"))], blocklistIsDefault: true)
        #expect(policy.permits(try address("127.0.0.1")))
        #expect(policy.permits(try address("::ffff:127.0.0.1")))
        #expect(!policy.permits(try address("127.0.0.2")))
        #expect(!policy.permits(try address("::1")))
    }

    @Test func anEmptyBlocklistBlocksNothing() throws {
        #expect(OutboundAddressPolicy.unrestricted.blocksNothing)
        #expect(OutboundAddressPolicy.unrestricted.permits(try address("127.0.0.1")))
    }

    @Test func listsSplitOnCommasAndWhiteSpace() throws {
        let ranges = try OutboundAddressPolicy.parseRanges(" 10.0.0.0/8,192.168.0.0/16 ::1\t,, fe80::/10\n").get()
        #expect(ranges.map(\.description) == ["10.0.0.0/8", "192.168.0.0/16", "::1/128", "fe80::/10"])
        #expect(try OutboundAddressPolicy.parseRanges(" , ,").get().isEmpty)
        #expect(OutboundAddressPolicy.parseRanges("10.0.0.0/8,10.0.0.0;8") == .failure(.init(entry: "10.0.0.0;8")))
    }

    @Test func theStartUpLineSummarisesBothLists() throws {
        #expect(OutboundAddressPolicy.standard.blocklistSummary == "default")
        #expect(OutboundAddressPolicy.standard.allowlistSummary == "none")
        #expect(OutboundAddressPolicy.unrestricted.blocklistSummary == "none")
        let custom = OutboundAddressPolicy(
            blocklist: try OutboundAddressPolicy.parseRanges("10.0.0.0/8 ::1").get(),
            allowlist: try OutboundAddressPolicy.parseRanges("10.1.0.0/16").get())
        #expect(custom.blocklistSummary == "2")
        #expect(custom.allowlistSummary == "10.1.0.0/16")
    }

    // MARK: Exemptions

    @Test func serversListedByNameAreExempt() {
        let rules = OutboundAddressRules(
            policy: .standard, accessPolicy: AccessPolicy.parse("hs.example.org, other.example:8448"),
            overrides: CSAPIURLOverrides(["overridden.example": "http://10.0.0.5:8008"]))
        #expect(rules.federation(of: "hs.example.org") == nil)
        #expect(rules.federation(of: "other.example:8448") == nil)
        #expect(rules.clientServerAPI(of: "hs.example.org") == nil)
        // Exact names only, as LIVEKIT_FULL_ACCESS_HOMESERVERS matches.
        #expect(rules.federation(of: "HS.example.org") == .standard)
        #expect(rules.federation(of: "other.example") == .standard)
        #expect(rules.federation(of: "evil.example") == .standard)
        // An override URL is the operator's, but federation of that server is not.
        #expect(rules.clientServerAPI(of: "overridden.example") == nil)
        #expect(rules.federation(of: "overridden.example") == .standard)
    }

    @Test func theWildcardExemptsNobody() {
        let rules = OutboundAddressRules(policy: .standard, accessPolicy: .everyone)
        #expect(rules.federation(of: "hs.example.org") == .standard)
        #expect(rules.clientServerAPI(of: "*") == .standard)
    }

    @Test func aPolicyThatBlocksNothingIsNotCheckedAtAll() {
        #expect(OutboundAddressRules(policy: .unrestricted).federation(of: "hs.example.org") == nil)
        let allowOnly = OutboundAddressPolicy(blocklist: [], allowlist: OutboundAddressPolicy.defaultBlocklist)
        #expect(OutboundAddressRules(policy: allowOnly).clientServerAPI(of: "hs.example.org") == nil)
    }

    // MARK: Configuration (§2.1, §2.3 row 12)

    @Test func unsetGivesTheDefaultListWithoutNotice() throws {
        let (configuration, notices) = try parse([:])
        #expect(configuration.addressPolicy == .standard)
        #expect(!notices.contains { $0.message.contains("LIVEKIT_IP_RANGE") })
        #expect(configuration.outboundAddressRules.federation(of: "example.org") == .standard)
    }

    @Test(arguments: ["", " ", ", ,"])
    func setButEmptyBlocksNothingWithAWarning(value: String) throws {
        let (configuration, notices) = try parse(["LIVEKIT_IP_RANGE_BLOCKLIST": value])
        #expect(configuration.addressPolicy.blocklist.isEmpty)
        #expect(configuration.addressPolicy.blocklistSummary == "none")
        #expect(notices.contains { $0.level == .warning && $0.message.hasPrefix("LIVEKIT_IP_RANGE_BLOCKLIST is empty") })
    }

    @Test func bothListsAreRead() throws {
        let (configuration, _) = try parse([
            "LIVEKIT_IP_RANGE_BLOCKLIST": "10.0.0.0/8, 192.168.0.0/16", "LIVEKIT_IP_RANGE_ALLOWLIST": "10.0.0.1 ::1",
        ])
        #expect(configuration.addressPolicy.blocklist.map(\.description) == ["10.0.0.0/8", "192.168.0.0/16"])
        #expect(configuration.addressPolicy.allowlist.map(\.description) == ["10.0.0.1/32", "::1/128"])
        #expect(!configuration.addressPolicy.blocklistIsDefault)
        let (allowOnly, _) = try parse(["LIVEKIT_IP_RANGE_ALLOWLIST": "127.0.0.1"])
        #expect(allowOnly.addressPolicy.blocklistSummary == "default")
        #expect(allowOnly.addressPolicy.allowlistSummary == "127.0.0.1/32")
    }

    @Test(arguments: [
        ("LIVEKIT_IP_RANGE_BLOCKLIST", "10.0.0.0/8, 10.0.0.0/33", "10.0.0.0/33"),
        ("LIVEKIT_IP_RANGE_ALLOWLIST", "localhost", "localhost"),
        ("LIVEKIT_IP_RANGE_ALLOWLIST", "127.0.0.1,\"x\"", "\"x\""),
        ("LIVEKIT_IP_RANGE_BLOCKLIST", "[::1]", "[::1]"),
    ])
    func anInvalidEntryFailsStartUpWithRow12(variable: String, value: String, entry: String) {
        #expect(parseError([variable: value]) == "Invalid \(variable) entry \(entry.goQuoted): expected an IP address or CIDR range")
    }

    @Test func row12ComesRightAfterRow7() {
        // Row 7 first …
        #expect(parseError(["LIVEKIT_CS_API_URL_OVERRIDES": "example.com", "LIVEKIT_IP_RANGE_BLOCKLIST": "nope"])
            == "failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry \"example.com\", expected server_name=url")
        // … then row 12, the blocklist before the allowlist, before any store is opened (row 8).
        #expect(parseError(["LIVEKIT_IP_RANGE_BLOCKLIST": "nope", "LIVEKIT_IP_RANGE_ALLOWLIST": "nix", "LIVEKIT_REDIS_URL": "bogus://"])
            == "Invalid LIVEKIT_IP_RANGE_BLOCKLIST entry \"nope\": expected an IP address or CIDR range")
        #expect(parseError(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "-1", "LIVEKIT_IP_RANGE_BLOCKLIST": "nope"])?.hasPrefix("LIVEKIT_SANITY_CHECK") == true)
    }

    @Test func checkConfigShowsBothLists() throws {
        let (configuration, _) = try parse(["LIVEKIT_IP_RANGE_BLOCKLIST": "10.0.0.0/8 ::1", "LIVEKIT_IP_RANGE_ALLOWLIST": "10.0.0.1"])
        let lines = configuration.description.split(separator: "\n")
        #expect(lines.contains("LIVEKIT_IP_RANGE_BLOCKLIST=10.0.0.0/8,::1/128"))
        #expect(lines.contains("LIVEKIT_IP_RANGE_ALLOWLIST=10.0.0.1/32"))
    }
}
