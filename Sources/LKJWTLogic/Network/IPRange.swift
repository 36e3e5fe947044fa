import Glibc

/// An IPv4 or IPv6 address as the bytes that go on the wire (4 or 16 of them).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Exactly what `inet_pton` accepts: dotted quads without leading zeros or shortcuts for IPv4,
    /// RFC 4291 text for IPv6; no brackets, zone IDs or white space.
    public init?(_ text: String) {
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &address) { Array($0) }
        } else {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &address) { Array($0) }
        }
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address inside `::ffff:a.b.c.d`, which the kernel connects to as that IPv4 address.
    var mappedIPv4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    /// The form policies compare: an IPv4-mapped IPv6 address becomes its IPv4 address.
    public var canonical: IPAddress { mappedIPv4 ?? self }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        let text = bytes.withUnsafeBytes { source in
            inet_ntop(family, source.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard text != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `fe80::/10`); a bare address is a range of one.
public struct IPRange: Sendable, Hashable, CustomStringConvertible {
    /// The first address of the range (host bits cleared).
    let network: IPAddress
    let prefixLength: Int

    public init(network: IPAddress, prefixLength: Int) {
        let bitCount = network.bytes.count * 8
        let length = min(max(prefixLength, 0), bitCount)
        self.network = IPAddress(bytes: IPRange.masked(network.bytes, prefixLength: length))!
        self.prefixLength = length
    }

    /// `address` or `address/prefix`, with the address as `inet_pton` reads it and the prefix a
    /// decimal 0–32 (IPv4) or 0–128 (IPv6) without sign or leading zeros. Host bits after the prefix
    /// are ignored, as in Synapse's `ip_range_blacklist`. An IPv4-mapped IPv6 range of /96 or longer
    /// becomes the IPv4 range it covers, because mapped addresses are checked as IPv4.
    public static func parse(_ text: String) -> IPRange? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bitCount = address.bytes.count * 8
        var length = bitCount
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                digits == "0" || !digits.hasPrefix("0"), let value = Int(digits), value <= bitCount
            else { return nil }
            length = value
        }
        if let mapped = address.mappedIPv4, length >= 96 {
            return IPRange(network: mapped, prefixLength: length - 96)
        }
        return IPRange(network: address, prefixLength: length)
    }

    /// Whether the range holds `address`; an IPv4-mapped IPv6 address counts as its IPv4 address.
    public func contains(_ address: IPAddress) -> Bool {
        let candidate = address.canonical
        guard candidate.bytes.count == network.bytes.count else { return false }
        return IPRange.masked(candidate.bytes, prefixLength: prefixLength) == network.bytes
    }

    public var description: String { "\(network)/\(prefixLength)" }

    private static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsInByte = min(max(prefixLength - index * 8, 0), 8)
            return bitsInByte == 8 ? byte : byte & ~(0xff >> bitsInByte)
        }
    }
}
