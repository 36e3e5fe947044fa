import Logging

/// A log record that parsing wants emitted once logging is up (banners, "key comes from file",
/// defaults). Parsing itself never logs, so it stays testable and runs before the log level is applied.
public struct ConfigurationNotice: Sendable, Equatable {
    public let level: Logger.Level
    public let message: String
    public let metadata: [String: String]

    public init(level: Logger.Level, message: String, metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

extension Configuration {
    /// Parses contract §2.1 in the order of §2.3; the first failure throws. Steps 8–11 (opening the
    /// Redis or SQLite store, listening) need I/O and happen later, with the texts in
    /// `ConfigurationError`.
    ///
    /// `readFile` returns a file's whole content or throws an error whose description is the OS error
    /// text. `logLevel` is set, but its notice comes from `logLevel(from:)`, which runs first (§1.4).
    ///
    /// `readRegistration` parses the text of `LIVEKIT_AS_REGISTRATION_FILE`; without one, such a file
    /// is a start-up error.
    public static func parse(
        environment: [String: String], readFile: (String) throws -> String, readRegistration: ApplicationServiceRegistration.Reader? = nil
    ) throws(ConfigurationError) -> (configuration: Configuration, notices: [ConfigurationNotice]) {
        var notices: [ConfigurationNotice] = []
        // Go's os.Getenv cannot tell unset from empty, so upstream treats both as unset.
        let value = { (name: String) -> String? in
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }

        // Step 1.
        let skipVerification = environment["LIVEKIT_INSECURE_SKIP_VERIFY_TLS"] == TLSSettings.skipVerificationConsent
        if skipVerification {
            notices += skipTLSBanner.map { ConfigurationNotice(level: .warning, message: $0) }
        }

        // Steps 2 and 3.
        let (apiKey, apiSecret) = try keyAndSecret(value, readFile: readFile, notices: &notices)
        guard let liveKitURL = value("LIVEKIT_URL"), !apiKey.isEmpty, !apiSecret.isEmpty else {
            throw .missingCredentials
        }

        // Step 4.
        let fullAccess = value("LIVEKIT_FULL_ACCESS_HOMESERVERS") ?? ""
        if AccessPolicy.names(in: fullAccess).isEmpty {
            notices += fullAccessDefaultBanner.map { ConfigurationNotice(level: .warning, message: $0) }
        }

        // Step 5 and the listen-address checks that extend it.
        let listenAddress = try listenAddress(bind: value("LIVEKIT_JWT_BIND"), port: value("LIVEKIT_JWT_PORT"))

        // Step 6. Swift's Int parsing matches Go's strconv.Atoi: optional sign, decimal digits only.
        var sanityCheckIntervalSeconds = 0
        if let interval = value("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS") {
            guard let seconds = Int(interval), seconds >= 0 else { throw .invalidSanityCheckInterval(interval) }
            sanityCheckIntervalSeconds = seconds
        }

        // Step 7.
        let csAPIURLOverrides = try CSAPIURLOverrides.parse(environment["LIVEKIT_CS_API_URL_OVERRIDES"] ?? "")

        // Step 12, right after step 7.
        let addressPolicy = try addressPolicy(environment, notices: &notices)

        // Step 13 (AS-MODE.md B1), after the CS-API overrides.
        let applicationService = try applicationService(value, readFile: readFile, readRegistration: readRegistration, notices: &notices)

        // Row 14.
        var membershipCheckIntervalSeconds = defaultMembershipCheckIntervalSeconds
        if let interval = value("LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS") {
            guard let seconds = Int(interval), seconds >= 0 else { throw .invalidMembershipCheckInterval(interval) }
            membershipCheckIntervalSeconds = seconds
            // Only when set: the default must not warn every standalone deployment.
            if seconds > 0 && applicationService == nil {
                notices.append(ConfigurationNotice(
                    level: .warning, message: "LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS has no effect unless running as an application service"))
            }
        }

        let configuration = Configuration(
            liveKitURL: liveKitURL, apiKey: apiKey, apiSecret: apiSecret,
            accessPolicy: AccessPolicy.parse(fullAccess), listenAddress: listenAddress,
            tls: TLSSettings(skipVerification: skipVerification, caFile: value("SSL_CERT_FILE"), caDirectory: value("SSL_CERT_DIR")),
            sanityCheckIntervalSeconds: sanityCheckIntervalSeconds, logLevel: logLevel(from: environment).level,
            csAPIURLOverrides: csAPIURLOverrides, jobStore: jobStore(value, notices: &notices),
            socketGroup: value("LIVEKIT_JWT_SOCKET_GROUP"), addressPolicy: addressPolicy,
            applicationService: applicationService, canUpdateOwnMetadata: environment["LIVEKIT_CAN_UPDATE_OWN_METADATA"] == "true",
            membershipCheckIntervalSeconds: membershipCheckIntervalSeconds)
        return (configuration, notices)
    }

    /// `LIVEKIT_LOG_LEVEL` (§10.1), case-insensitive. Unset or empty gives info with an info notice;
    /// anything unknown gives info with a warn notice carrying the value.
    public static func logLevel(from environment: [String: String]) -> (level: Logger.Level, notice: ConfigurationNotice?) {
        let raw = environment["LIVEKIT_LOG_LEVEL"] ?? ""
        switch raw.lowercased() {
        case "":
            return (.info, ConfigurationNotice(level: .info, message: "log level defaulting to info"))
        case "debug": return (.debug, nil)
        case "info": return (.info, nil)
        case "warn", "warning": return (.warning, nil)
        case "error": return (.error, nil)
        default:
            return (.info, ConfigurationNotice(
                level: .warning, message: "Invalid log level in LIVEKIT_LOG_LEVEL, defaulting to info",
                metadata: ["invalidValue": raw]))
        }
    }

    /// §2.2: the key file wins; otherwise key and secret each come from their file or variable.
    /// Notices name the source (and path), never the values.
    private static func keyAndSecret(
        _ value: (String) -> String?, readFile: (String) throws -> String, notices: inout [ConfigurationNotice]
    ) throws(ConfigurationError) -> (key: String, secret: String) {
        func read(_ path: String) throws(ConfigurationError) -> String {
            do { return try readFile(path) } catch { throw .unreadableFile(error) }
        }

        let key: String
        let secret: String
        if let keySecretPath = value("LIVEKIT_KEY_FILE") {
            // Exactly one `:`, as upstream: a file with more (e.g. two YAML lines) is rejected.
            let parts = try read(keySecretPath).unicodeScalars.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw .invalidKeySecretFileFormat }
            notices.append(ConfigurationNotice(
                level: .info, message: "Using LiveKit API key and secret from LIVEKIT_KEY_FILE",
                metadata: ["keySecretPath": keySecretPath]))
            key = String(Substring(parts[0]))
            secret = String(Substring(parts[1]))
        } else {
            if let keyPath = value("LIVEKIT_KEY_FROM_FILE") {
                key = try read(keyPath)
                notices.append(ConfigurationNotice(
                    level: .info, message: "Using LiveKit API key from LIVEKIT_KEY_FROM_FILE", metadata: ["keyPath": keyPath]))
            } else {
                key = value("LIVEKIT_KEY") ?? ""
                notices.append(ConfigurationNotice(level: .info, message: "Using LiveKit API key from LIVEKIT_KEY"))
            }
            if let secretPath = value("LIVEKIT_SECRET_FROM_FILE") {
                secret = try read(secretPath)
                notices.append(ConfigurationNotice(
                    level: .info, message: "Using LiveKit API secret from LIVEKIT_SECRET_FROM_FILE", metadata: ["secretPath": secretPath]))
            } else {
                secret = value("LIVEKIT_SECRET") ?? ""
                notices.append(ConfigurationNotice(level: .info, message: "Using LiveKit API secret from LIVEKIT_SECRET"))
            }
        }
        return (trimmingSpaceAndLineBreaks(key), trimmingSpaceAndLineBreaks(secret))
    }

    /// Upstream's `strings.Trim(s, " \r\n")`: tabs and other white space stay. Works on scalars so a
    /// trailing "\r\n" (one Character) is removed too.
    private static func trimmingSpaceAndLineBreaks(_ text: String) -> String {
        let scalars = text.unicodeScalars
        let kept = { (scalar: Unicode.Scalar) in scalar != " " && scalar != "\r" && scalar != "\n" }
        guard let first = scalars.firstIndex(where: kept), let last = scalars.lastIndex(where: kept) else { return "" }
        return String(scalars[first...last])
    }

    private static func listenAddress(bind: String?, port: String?) throws(ConfigurationError) -> ListenAddress {
        switch (bind, port) {
        case (.some, .some):
            throw .bindAndPortTogether
        case (.some(let bind), nil):
            guard let address = ListenAddress.parse(bind) else { throw .invalidBind(bind) }
            return address
        case (nil, .some(let port)):
            guard let number = ListenAddress.port(Substring(port)) else { throw .invalidPort(port) }
            return .loopback(port: number)
        case (nil, nil):
            return .loopback(port: ListenAddress.defaultPort)
        }
    }

    /// §13.1: an unset blocklist is the default list; set but empty (or only separators) blocks
    /// nothing, which deserves a warning. Unlike the other variables, empty is not the same as unset.
    private static func addressPolicy(
        _ environment: [String: String], notices: inout [ConfigurationNotice]
    ) throws(ConfigurationError) -> OutboundAddressPolicy {
        func ranges(_ variable: String) throws(ConfigurationError) -> [IPRange]? {
            guard let raw = environment[variable] else { return nil }
            switch OutboundAddressPolicy.parseRanges(raw) {
            case .success(let ranges): return ranges
            case .failure(let invalid): throw .invalidIPRangeEntry(variable: variable, entry: invalid.entry)
            }
        }
        let blocklist = try ranges("LIVEKIT_IP_RANGE_BLOCKLIST")
        let allowlist = try ranges("LIVEKIT_IP_RANGE_ALLOWLIST") ?? []
        guard let blocklist else {
            return OutboundAddressPolicy(blocklist: OutboundAddressPolicy.defaultBlocklist, allowlist: allowlist, blocklistIsDefault: true)
        }
        if blocklist.isEmpty {
            notices.append(ConfigurationNotice(
                level: .warning,
                message: "LIVEKIT_IP_RANGE_BLOCKLIST is empty: requests and remote servers can make the service connect to any address, private and loopback ones included"))
        }
        return OutboundAddressPolicy(blocklist: blocklist, allowlist: allowlist)
    }

    /// AS-MODE-NOTES §1.2: a registration file wins over the two token variables and gives only the
    /// tokens; the server name always comes from `LIVEKIT_HS_SERVER_NAME` (verbatim). All three set:
    /// application-service mode; none: off; anything between is a start-up error.
    private static func applicationService(
        _ value: (String) -> String?, readFile: (String) throws -> String, readRegistration: ApplicationServiceRegistration.Reader?,
        notices: inout [ConfigurationNotice]
    ) throws(ConfigurationError) -> ApplicationServiceSettings? {
        let serverName = value("LIVEKIT_HS_SERVER_NAME") ?? ""
        let tokens: ApplicationServiceRegistration.Tokens
        let source: ApplicationServiceSettings.TokenSource
        if let path = value("LIVEKIT_AS_REGISTRATION_FILE") {
            let text: String
            do { text = try readFile(path) } catch { throw .unreadableFile(error) }
            guard let readRegistration else { throw .registrationUnparsable("no registration file reader") }
            tokens = try readRegistration(text)
            source = .registrationFile(path: path)
            notices.append(ConfigurationNotice(
                level: .info, message: "Using application service configuration from LIVEKIT_AS_REGISTRATION_FILE", metadata: ["path": path]))
        } else {
            tokens = .init(asToken: value("LIVEKIT_AS_TOKEN") ?? "", hsToken: value("LIVEKIT_HS_TOKEN") ?? "")
            source = .environment
            if !tokens.asToken.isEmpty || !tokens.hsToken.isEmpty || !serverName.isEmpty {
                notices.append(ConfigurationNotice(level: .info, message: "Using application service configuration from LIVEKIT_AS_TOKEN and LIVEKIT_HS_TOKEN"))
            }
        }
        let asToken = trimmingWhiteSpace(tokens.asToken)
        let hsToken = trimmingWhiteSpace(tokens.hsToken)
        switch (asToken.isEmpty, hsToken.isEmpty, serverName.isEmpty) {
        case (true, true, true): return nil
        case (false, false, false): return ApplicationServiceSettings(asToken: asToken, hsToken: hsToken, serverName: serverName, tokenSource: source)
        default: throw .applicationServicePartlySet
        }
    }

    /// Rust's `str::trim`: every Unicode White_Space character at either end.
    static func trimmingWhiteSpace(_ text: String) -> String {
        let scalars = text.unicodeScalars
        let kept = { (scalar: Unicode.Scalar) in !scalar.properties.isWhitespace }
        guard let first = scalars.firstIndex(where: kept), let last = scalars.lastIndex(where: kept) else { return "" }
        return String(scalars[first...last])
    }

    /// Redis wins over `LIVEKIT_JOBS_DB`; without either, systemd's `STATE_DIRECTORY` (first entry of
    /// its colon-separated list) or the fixed default.
    private static func jobStore(_ value: (String) -> String?, notices: inout [ConfigurationNotice]) -> JobStoreLocation {
        if let redisURL = value("LIVEKIT_REDIS_URL") {
            if let ignored = value("LIVEKIT_JOBS_DB") {
                notices.append(ConfigurationNotice(
                    level: .info, message: "LIVEKIT_JOBS_DB is ignored because LIVEKIT_REDIS_URL is set",
                    metadata: ["LIVEKIT_JOBS_DB": ignored]))
            }
            return .redis(url: redisURL)
        }
        if let path = value("LIVEKIT_JOBS_DB") {
            guard path == JobStoreLocation.memoryPath else { return .sqlite(path: path) }
            notices.append(ConfigurationNotice(
                level: .warning,
                message: "LIVEKIT_JOBS_DB is :memory:, delegated jobs are neither durable nor shared between processes"))
            return .memory
        }
        if let stateDirectory = value("STATE_DIRECTORY")?.split(separator: ":").first {
            let separator = stateDirectory.hasSuffix("/") ? "" : "/"
            return .sqlite(path: "\(stateDirectory)\(separator)jobs.sqlite3")
        }
        return .sqlite(path: JobStoreLocation.defaultDatabasePath)
    }

    static let skipTLSBanner = [
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "!!! WARNING !!!  LIVEKIT_INSECURE_SKIP_VERIFY_TLS        !!! WARNING !!!",
        "!!! WARNING !!!  Allow to skip invalid TLS certificates  !!! WARNING !!!",
        "!!! WARNING !!!  Use only for testing or debugging       !!! WARNING !!!",
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    ]

    static let fullAccessDefaultBanner = [
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "!!! WARNING !!!  LIVEKIT_FULL_ACCESS_HOMESERVERS is not set            !!!",
        "!!! WARNING !!!  Defaulting to '*': users of ANY homeserver can make   !!!",
        "!!! WARNING !!!  this service create rooms on your SFU. Set it to the  !!!",
        "!!! WARNING !!!  server name(s) you intend to serve.                   !!!",
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    ]
}
