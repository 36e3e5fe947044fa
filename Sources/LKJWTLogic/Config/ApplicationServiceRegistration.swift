/// The application-service registration file `lkjwt-fcgi registration` prints (AS-MODE.md B1): the
/// keys Synapse 1.163 really reads (AS-MODE-NOTES §1.1, §5.3) — the unstable MSC4512 proxy keys and
/// the unstable MSC4502 scope; the stable names of upstream's README example are ignored by it.
public struct ApplicationServiceRegistration: Sendable, Equatable {
    public struct InvalidArgument: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The two tokens the service takes from a registration file (AS-MODE-NOTES §1.2 step 2); the
    /// homeserver reads everything else.
    public struct Tokens: Sendable, Equatable {
        public var asToken: String
        public var hsToken: String

        public init(asToken: String, hsToken: String) {
            self.asToken = asToken
            self.hsToken = hsToken
        }
    }

    /// Turns a registration file's text into its tokens, or the start-up error (§2.3 row 13). The
    /// YAML parser is a C library, so it lives with the system code (`YAMLRegistrationReader`).
    public typealias Reader = @Sendable (String) throws(ConfigurationError) -> Tokens

    public static let defaultID = "lkjwt-fcgi"
    public static let senderLocalpart = "_lkjwt_fcgi"
    public static let proxyPrefix = "rtc/livekit"
    public static let isJoinedScope = "urn:matrix:client:io.element.msc4502:rooms:is_joined"
    /// 32 bytes from the system RNG per token, base64url: URL-safe, 43 characters.
    public static let tokenBytes = 32

    public var id: String
    public var serverName: String
    /// Where the homeserver reaches the web server in front of lkjwt-fcgi (`io.element.msc4512.proxy_url`).
    public var proxyURL: String
    public var asToken: String
    public var hsToken: String

    /// Checks the arguments the way the homeserver would refuse them at start-up, and draws fresh tokens.
    public init(id: String = defaultID, serverName: String, proxyURL: String, random: any RandomSource) throws(InvalidArgument) {
        guard !id.isEmpty, !id.contains("|"), !Self.hasSpaceOrControl(id) else {
            throw InvalidArgument(description: "--id must be a non-empty string without `|`, white space or control characters")
        }
        guard !serverName.isEmpty, !Self.hasSpaceOrControl(serverName), !serverName.contains("/"), !serverName.hasPrefix("@") else {
            throw InvalidArgument(description: "--server-name must be the homeserver's server name, e.g. example.com or matrix.example.com:8448")
        }
        let lowercased = proxyURL.lowercased()
        guard lowercased.hasPrefix("http://") || lowercased.hasPrefix("https://"), proxyURL.count > 8, !Self.hasSpaceOrControl(proxyURL),
            !proxyURL.contains("?"), !proxyURL.contains("#")
        else {
            throw InvalidArgument(description: "--url must be the http or https URL at which the homeserver reaches the web server in front of lkjwt-fcgi, without query or fragment")
        }
        self.id = id
        self.serverName = serverName
        self.proxyURL = proxyURL
        self.asToken = Base64.url(random.bytes(Self.tokenBytes))
        self.hsToken = Base64.url(random.bytes(Self.tokenBytes))
    }

    /// Covers exactly the server's local users: anchored at both ends (Synapse matches at the start
    /// only, so an unanchored `@.*:example\.com` would also cover `@x:example.com.evil.org`), which
    /// the membership monitor relies on (AS-MODE-NOTES §4.5).
    public var usersRegex: String {
        "^@.*:" + Self.regexEscaped(serverName) + "$"
    }

    /// The YAML document. Every scalar is a JSON string, which YAML reads as a double-quoted string.
    public var yaml: String {
        func quoted(_ text: String) -> String { JSONValue.string(text).serialized() }
        return """
            # Application-service registration of lkjwt-fcgi for \(serverName) (MSC4195 through Synapse's
            # MSC4512 proxy). List this file in homeserver.yaml `app_service_config_files`, and give it
            # to lkjwt-fcgi as LIVEKIT_AS_REGISTRATION_FILE with LIVEKIT_HS_SERVER_NAME=\(serverName).
            # The two tokens are secrets: keep this file readable only by Synapse and lkjwt-fcgi.
            id: \(quoted(id))
            as_token: \(quoted(asToken))
            hs_token: \(quoted(hsToken))
            sender_localpart: \(quoted(Self.senderLocalpart))
            # No transactions and no pings: the homeserver only forwards requests (proxy_url below).
            url: null
            # Delayed-event calls made for users are not rate-limited per user.
            rate_limited: false
            namespaces:
              users:
                - exclusive: false
                  regex: \(quoted(usersRegex))
              aliases: []
              rooms: []
            io.element.msc4502.scopes:
              - \(quoted(Self.isJoinedScope))
            io.element.msc4512.proxy_prefix: \(quoted(Self.proxyPrefix))
            io.element.msc4512.proxy_url: \(quoted(proxyURL))

            """
    }

    static func hasSpaceOrControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7f || $0.properties.isWhitespace }
    }

    /// Escapes the regular-expression metacharacters (`\ . ^ $ * + ? ( ) [ ] { } |`) and nothing else, so the
    /// pattern means the same to Python's `re` and to stricter engines that refuse needless escapes.
    static func regexEscaped(_ text: String) -> String {
        var output = ""
        for scalar in text.unicodeScalars {
            if "\\.^$*+?()[]{}|".unicodeScalars.contains(scalar) { output += "\\" }
            output.unicodeScalars.append(scalar)
        }
        return output
    }
}
