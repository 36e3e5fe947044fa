import Glibc

/// A Matrix server name split per contract §5.2 (lenient, as upstream).
public struct ServerName: Sendable, Equatable, CustomStringConvertible {
    public enum Host: Sendable, Equatable {
        case ipv4(String)
        /// Without brackets.
        case ipv6(String)
        case dns(String)
    }

    public let raw: String
    public let host: Host
    public let port: Int?

    public var description: String { raw }

    /// nil when the name is invalid (§5.2): an invalid name can never be verified.
    public static func parse(_ raw: String) -> ServerName? {
        var hostPart = Substring(raw)
        var port: Int?
        if let colon = raw.lastIndex(of: ":") {
            let candidate = raw[raw.index(after: colon)...]
            if !candidate.isEmpty, candidate.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(candidate), value <= 65535 {
                port = value
                hostPart = raw[..<colon]
            }
        }
        guard let host = parseHost(String(hostPart)) else { return nil }
        return ServerName(raw: raw, host: host, port: port)
    }

    static func parseHost(_ text: String) -> Host? {
        if text.hasPrefix("[") && text.hasSuffix("]") && text.count > 2 {
            let inner = String(text.dropFirst().dropLast())
            return isAddress(inner, family: AF_INET6) ? .ipv6(inner) : nil
        }
        if isDottedIPv4(text) { return .ipv4(text) }
        let allowed = text.utf8.allSatisfy { byte in
            (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 45 || byte == 46
        }
        return !text.isEmpty && allowed ? .dns(text) : nil
    }

    static func isDottedIPv4(_ text: String) -> Bool {
        // Three dots counted as bytes, not split into substrings (every token request parses its server
        // name); inet_pton accepts ASCII only, so no dot inside a grapheme can pass either way.
        text.utf8.reduce(0) { $1 == UInt8(ascii: ".") ? $0 + 1 : $0 } == 3 && isAddress(text, family: AF_INET)
    }

    static func isAddress(_ text: String, family: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(family, text, &buffer) == 1
    }

    var isIPLiteral: Bool {
        if case .dns = host { return false }
        return true
    }

    /// The host as it goes into a URL authority (IPv6 in brackets).
    public var urlHost: String {
        switch host {
        case .ipv4(let address): address
        case .ipv6(let address): "[\(address)]"
        case .dns(let name): name
        }
    }
}
