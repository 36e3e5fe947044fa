/// Where a FastCGI process opens its own socket (contract §2.1, `LIVEKIT_JWT_BIND` / `LIVEKIT_JWT_PORT`).
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// An empty host means all interfaces; an IPv6 host is stored without brackets.
    case tcp(host: String, port: Int)
    case unix(path: String)

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
}
