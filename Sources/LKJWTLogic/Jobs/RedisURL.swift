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
        guard let separator = text.firstRange(of: "://") else {
            throw ParseError("missing scheme, expected redis://, rediss:// or unix://")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        var rest = text[separator.upperBound...]
        var query: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }
        var authority = rest[..<(rest.firstIndex(of: "/") ?? rest.endIndex)]
        let path = rest[authority.endIndex...]
        // The last `@` ends the user info, as in Go's url.Parse: passwords may contain `@`.
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let colon = userInfo.firstIndex(of: ":") ?? userInfo.endIndex
            username = try Self.nonEmpty(Self.percentDecoded(userInfo[..<colon]))
            password = colon == userInfo.endIndex ? nil : try Self.nonEmpty(Self.percentDecoded(userInfo[userInfo.index(after: colon)...]))
        }
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
