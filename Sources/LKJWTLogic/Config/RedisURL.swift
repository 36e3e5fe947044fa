/// A parsed `LIVEKIT_REDIS_URL` (contract §2.1): `redis://[user:pass@]host[:port][/db]`, `rediss://…`
/// (TLS) or `unix://[user:pass@]/path[?db=N]`. Defaults follow go-redis' `ParseURL`, which upstream
/// uses: host `localhost`, port 6379, database 0, and a `db` query option overriding the path.
public struct RedisURL: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    /// Why a URL was rejected: the `<detail>` of the §2.3 row-8 text.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String

        init(_ description: String) {
            self.description = description
        }
    }

    public var endpoint: Endpoint
    public var tls: Bool
    public var username: String?
    public var password: String?
    public var database: Int

    public init(endpoint: Endpoint, tls: Bool = false, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.tls = tls
        self.username = username
        self.password = password
        self.database = database
    }

    public init(parsing text: String) throws(ParseError) {
        guard let separator = Self.schemeSeparator(in: text) else {
            throw ParseError("missing scheme, expected redis://, rediss:// or unix://")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        var rest = text[separator.upperBound...]
        // The user info first, so that whatever the password contains (`/`, `?`, `#`, `@`) never
        // reaches the host, path or query parsing, nor their error texts (§13.6).
        if let userInfo = Self.userInfo(in: text) {
            let colon = userInfo.firstIndex(of: ":") ?? userInfo.endIndex
            username = try Self.nonEmpty(Self.percentDecoded(userInfo[..<colon]))
            password = colon == userInfo.endIndex ? nil : try Self.nonEmpty(Self.percentDecoded(userInfo[userInfo.index(after: colon)...]))
            rest = text[text.index(after: userInfo.endIndex)...]
        }
        var query: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }
        let authority = rest[..<(rest.firstIndex(of: "/") ?? rest.endIndex)]
        let path = rest[authority.endIndex...]
        switch scheme {
        case "redis", "rediss":
            tls = scheme == "rediss"
            endpoint = try Self.tcpEndpoint(authority)
            let segments = path.split(separator: "/")
            guard segments.count <= 1 else { throw ParseError("invalid URL path \(String(path).goQuoted)") }
            database = try segments.first.map(Self.databaseNumber) ?? 0
        case "unix":
            guard authority.isEmpty else {
                throw ParseError("a unix socket URL has no host, got \(String(authority).goQuoted); write unix:///path")
            }
            guard !path.isEmpty else { throw ParseError("empty unix socket path") }
            tls = false
            endpoint = .unix(path: try Self.percentDecoded(path))
            database = 0
        default:
            throw ParseError("unsupported scheme \(scheme.goQuoted), expected redis, rediss or unix")
        }
        for option in query.split(separator: "&") {
            let equals = option.firstIndex(of: "=") ?? option.endIndex
            let name = try Self.percentDecoded(option[..<equals])
            guard name == "db" else { throw ParseError("unsupported option \(name.goQuoted), only db is supported") }
            let value = equals == option.endIndex ? "" : try Self.percentDecoded(option[option.index(after: equals)...])
            database = try Self.databaseNumber(Substring(value))
        }
    }

    /// The user info: from the scheme's `://` (or the start, when there is none) up to the last `@`
    /// before the host, whatever it contains. Host, port, database and `?db=` never contain `@`, so
    /// for `redis://` and `rediss://` that is the last `@` of the URL; a unix socket path may, so there
    /// it is the last `@` followed by the path's `/`, and `unix:///path` has none.
    static func userInfo(in text: String) -> Substring? {
        let separator = schemeSeparator(in: text)
        let start = separator?.upperBound ?? text.startIndex
        let afterScheme = text[start...]
        let isUnix = separator.map { text[..<$0.lowerBound].lowercased() == "unix" } ?? false
        let at: String.Index?
        if isUnix {
            guard !afterScheme.hasPrefix("/") else { return nil }
            at = afterScheme.indices.last { afterScheme[$0] == "@" && afterScheme[afterScheme.index(after: $0)...].hasPrefix("/") }
        } else {
            at = afterScheme.lastIndex(of: "@")
        }
        return at.map { afterScheme[..<$0] }
    }

    /// The first `://`, when what precedes it is a scheme (RFC 3986: a letter, then letters, digits,
    /// `+`, `-`, `.`); otherwise the text may be a password and is never echoed as a scheme.
    private static func schemeSeparator(in text: String) -> Range<String.Index>? {
        guard let separator = text.firstRange(of: "://") else { return nil }
        let scheme = text.utf8[..<separator.lowerBound]
        guard let first = scheme.first, (0x41...0x5A).contains(first) || (0x61...0x7A).contains(first),
              scheme.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E })
        else { return nil }
        return separator
    }

    /// The URL as it may be printed: a user info with a `:` keeps its user name and shows `***` for the
    /// password, one without (Redis set-ups often put a bare password there) becomes `***` whole, as
    /// does everything before the last `@` of a text without a scheme.
    public static func maskingPassword(in text: String) -> String {
        guard let userInfo = userInfo(in: text) else { return text }
        let user = schemeSeparator(in: text) == nil ? nil : userInfo.firstIndex(of: ":").map { userInfo[..<$0] }
        let masked = user.map { "\($0):***" } ?? "***"
        return "\(text[..<userInfo.startIndex])\(masked)\(text[userInfo.endIndex...])"
    }

    /// `host[:port]`, `[ipv6][:port]`; an empty host or port takes the default.
    private static func tcpEndpoint(_ authority: Substring) throws(ParseError) -> Endpoint {
        var host: Substring
        var port: Substring = ""
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw ParseError("missing ] in host \(String(authority).goQuoted)") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { throw ParseError("invalid host \(String(authority).goQuoted)") }
            port = after.dropFirst()
        } else {
            host = authority
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                port = authority[authority.index(after: colon)...]
            }
            guard !host.contains(":") else { throw ParseError("IPv6 host \(String(authority).goQuoted) must be in brackets") }
        }
        guard let number = port.isEmpty ? 6379 : decimal(port), (1...65535).contains(number) else {
            throw ParseError("invalid port \(String(port).goQuoted)")
        }
        return .tcp(host: host.isEmpty ? "localhost" : String(host), port: number)
    }

    private static func databaseNumber(_ text: Substring) throws(ParseError) -> Int {
        guard let number = decimal(text) else { throw ParseError("invalid database number \(String(text).goQuoted)") }
        return number
    }

    /// Plain ASCII digits only: `Int(_:)` would also take signs.
    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text)
    }

    private static func nonEmpty(_ text: String) -> String? {
        text.isEmpty ? nil : text
    }

    private static func percentDecoded(_ text: Substring) throws(ParseError) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                // Not echoing the text: it may be the password.
                throw ParseError("invalid percent-encoding: % must be followed by two hex digits")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
