import Glibc

/// Where a FastCGI process opens its own socket (contract §2.1, `LIVEKIT_JWT_BIND` / `LIVEKIT_JWT_PORT`).
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// An empty host means all interfaces; an IPv6 host is stored without brackets.
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// Without `LIVEKIT_JWT_BIND`: loopback only (rev. 2), since FastCGI has no authentication and
    /// anyone reaching the socket can forge `REMOTE_ADDR` and every other parameter.
    public static let defaultPort = 8080

    public static func loopback(port: Int) -> ListenAddress {
        .tcp(host: "127.0.0.1", port: port)
    }

    /// `unix:<path>`, a value without `:` (a socket path), or `host:port` with an optional bracketed
    /// IPv6 host. nil when the port is not 1–65535 or the host is malformed.
    public static func parse(_ value: String) -> ListenAddress? {
        if value.hasPrefix("unix:") {
            let path = value.dropFirst("unix:".count)
            return path.isEmpty ? nil : .unix(path: String(path))
        }
        guard let colon = value.lastIndex(of: ":") else {
            return value.isEmpty ? nil : .unix(path: value)
        }
        guard let port = port(value[value.index(after: colon)...]) else { return nil }
        var host = value[..<colon]
        if host.hasPrefix("[") {
            guard host.count >= 2, host.hasSuffix("]") else { return nil }
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            // As Go's net.SplitHostPort: an IPv6 host needs brackets, else the port is ambiguous.
            return nil
        }
        guard !host.contains("["), !host.contains("]") else { return nil }
        return .tcp(host: String(host), port: port)
    }

    /// A TCP port as written in the environment: ASCII digits only (no sign, no spaces), 1–65535.
    static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(text), (1...65535).contains(port)
        else { return nil }
        return port
    }

    /// Round-trips through `parse`, so it can be pasted back into `LIVEKIT_JWT_BIND`.
    public var description: String {
        switch self {
        case .tcp(let host, let port) where host.contains(":"): "[\(host)]:\(port)"
        case .tcp(let host, let port): "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    /// False for unix sockets and for `localhost`, 127.0.0.0/8 and ::1 (also IPv4-mapped); true for
    /// every other host, including the empty one (all interfaces) and names that need a lookup.
    var isReachableFromOtherHosts: Bool {
        guard case .tcp(let host, _) = self else { return false }
        if host == "localhost" { return false }
        var ipv4 = in_addr()
        if inet_pton(AF_INET, host, &ipv4) == 1 {
            return UInt32(bigEndian: ipv4.s_addr) >> 24 != 127
        }
        var ipv6 = in6_addr()
        guard inet_pton(AF_INET6, host, &ipv6) == 1 else { return true }
        let bytes = withUnsafeBytes(of: ipv6) { Array($0) }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return false }
        let mapped = bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF
        return !(mapped && bytes[12] == 127)
    }

    /// The start-up warning for an own TCP socket other hosts can reach (contract §2.1 rev. 2).
    public var exposureNotice: ConfigurationNotice? {
        guard isReachableFromOtherHosts else { return nil }
        return ConfigurationNotice(
            level: .warning,
            message: "The FastCGI socket is reachable from other hosts: anyone who can connect to it can forge REMOTE_ADDR and every request parameter; listen on 127.0.0.1 or a unix socket unless a firewall keeps others out",
            metadata: ["LIVEKIT_JWT_BIND": description])
    }
}
