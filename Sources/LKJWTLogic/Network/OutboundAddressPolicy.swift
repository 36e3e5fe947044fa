/// Which addresses the service may connect to on a request's or a remote server's say (contract
/// §13.1): everything except the blocklist, unless the allowlist holds the address too.
public struct OutboundAddressPolicy: Sendable, Equatable {
    var blocklist: [IPRange]
    var allowlist: [IPRange]
    /// `LIVEKIT_IP_RANGE_BLOCKLIST` was unset: the start-up line says `default` rather than a count.
    var blocklistIsDefault: Bool

    /// Synapse's default `ip_range_blacklist` plus the unspecified addresses (§13.1).
    static let defaultBlocklist: [IPRange] = [
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
        "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "0.0.0.0/8", "::1/128", "::/128", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8", "fec0::/10",
    ].map { IPRange.parse($0)! }

    /// What an unset `LIVEKIT_IP_RANGE_BLOCKLIST` and `LIVEKIT_IP_RANGE_ALLOWLIST` give.
    public static let standard = OutboundAddressPolicy(blocklist: defaultBlocklist, allowlist: [], blocklistIsDefault: true)
    /// Blocks nothing (`LIVEKIT_IP_RANGE_BLOCKLIST=`; and unit tests whose fakes need no policy).
    public static let unrestricted = OutboundAddressPolicy(blocklist: [], allowlist: [])

    public init(blocklist: [IPRange], allowlist: [IPRange], blocklistIsDefault: Bool = false) {
        self.blocklist = blocklist
        self.allowlist = allowlist
        self.blocklistIsDefault = blocklistIsDefault
    }

    var blocksNothing: Bool { blocklist.isEmpty }

    /// Allow beats block; IPv4-mapped IPv6 addresses are judged as their IPv4 address.
    public func permits(_ address: IPAddress) -> Bool {
        if allowlist.contains(where: { $0.contains(address) }) { return true }
        return !blocklist.contains { $0.contains(address) }
    }

    /// Addresses or CIDR ranges separated by commas and/or white space; empty items are dropped.
    /// Returns the first entry that is not one, for the start-up error of §2.3 row 12.
    static func parseRanges(_ value: String) -> Result<[IPRange], InvalidEntry> {
        var ranges: [IPRange] = []
        let entries = value.unicodeScalars.split { $0 == "," || $0.properties.isWhitespace }.map { String(Substring($0)) }
        for entry in entries {
            guard let range = IPRange.parse(entry) else { return .failure(InvalidEntry(entry: entry)) }
            ranges.append(range)
        }
        return .success(ranges)
    }

    public struct InvalidEntry: Error, Sendable, Equatable {
        public let entry: String
    }

    /// `IPRangeBlocklist` of the start-up line: `default`, `none`, or how many ranges.
    public var blocklistSummary: String {
        if blocklistIsDefault { return "default" }
        return blocklist.isEmpty ? "none" : String(blocklist.count)
    }

    /// `IPRangeAllowlist` of the start-up line: `none` or the ranges, since each one opens a hole.
    public var allowlistSummary: String {
        allowlist.isEmpty ? "none" : allowlist.map(\.description).joined(separator: ",")
    }
}
