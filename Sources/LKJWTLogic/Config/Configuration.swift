import Logging

/// Every setting of contract §2.1 after parsing. Built once at start-up and shared read-only by all
/// worker threads.
public struct Configuration: Sendable, Equatable, CustomStringConvertible {
    /// Returned verbatim as `url` in token responses.
    public var liveKitURL: String
    public var apiKey: String
    public var apiSecret: String
    public var accessPolicy: AccessPolicy
    /// Used only in "FastCGI, own socket" mode (§1.3).
    public var listenAddress: ListenAddress
    public var tls: TLSSettings
    /// 0 disables the periodic presence check (§8.6, phase 2).
    public var sanityCheckIntervalSeconds: Int
    public var logLevel: Logger.Level
    public var csAPIURLOverrides: CSAPIURLOverrides
    public var jobStore: JobStoreLocation
    /// Group of an own unix socket (`LIVEKIT_JWT_SOCKET_GROUP`, §13.6); looked up when listening.
    public var socketGroup: String?
    /// `LIVEKIT_IP_RANGE_BLOCKLIST` / `LIVEKIT_IP_RANGE_ALLOWLIST` (§13.1).
    public var addressPolicy: OutboundAddressPolicy

    public init(
        liveKitURL: String, apiKey: String, apiSecret: String, accessPolicy: AccessPolicy = .everyone,
        listenAddress: ListenAddress = .loopback(port: ListenAddress.defaultPort), tls: TLSSettings = TLSSettings(),
        sanityCheckIntervalSeconds: Int = 0, logLevel: Logger.Level = .info,
        csAPIURLOverrides: CSAPIURLOverrides = CSAPIURLOverrides(), jobStore: JobStoreLocation = .memory,
        socketGroup: String? = nil, addressPolicy: OutboundAddressPolicy = .standard
    ) {
        self.liveKitURL = liveKitURL
        self.apiKey = apiKey
        self.apiSecret = apiSecret
        self.accessPolicy = accessPolicy
        self.listenAddress = listenAddress
        self.tls = tls
        self.sanityCheckIntervalSeconds = sanityCheckIntervalSeconds
        self.logLevel = logLevel
        self.csAPIURLOverrides = csAPIURLOverrides
        self.jobStore = jobStore
        self.socketGroup = socketGroup
        self.addressPolicy = addressPolicy
    }

    /// The effective settings for `--check-config`, one `NAME=value` line per variable in the spelling
    /// the environment takes (empty = unset). Secrets are masked: this text ends up in terminals and
    /// bug reports.
    public var description: String {
        var redisURL = ""
        var jobsDatabase = ""
        switch jobStore {
        case .redis(let url): redisURL = JobStoreLocation.maskingPassword(in: url)
        case .sqlite(let path): jobsDatabase = path
        case .memory: jobsDatabase = JobStoreLocation.memoryPath
        }
        let lines: [(String, String)] = [
            ("LIVEKIT_URL", liveKitURL),
            ("LIVEKIT_KEY", apiKey),
            ("LIVEKIT_SECRET", "***"),
            ("LIVEKIT_FULL_ACCESS_HOMESERVERS", accessPolicy.description),
            ("LIVEKIT_JWT_BIND", listenAddress.description),
            ("LIVEKIT_JWT_SOCKET_GROUP", socketGroup ?? ""),
            ("LIVEKIT_INSECURE_SKIP_VERIFY_TLS", tls.skipVerification ? TLSSettings.skipVerificationConsent : ""),
            ("SSL_CERT_FILE", tls.caFile ?? ""),
            ("SSL_CERT_DIR", tls.caDirectory ?? ""),
            ("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS", String(sanityCheckIntervalSeconds)),
            ("LIVEKIT_LOG_LEVEL", logLevel == .warning ? "warn" : logLevel.rawValue),
            ("LIVEKIT_CS_API_URL_OVERRIDES", csAPIURLOverrides.description),
            ("LIVEKIT_IP_RANGE_BLOCKLIST", addressPolicy.blocklist.map(\.description).joined(separator: ",")),
            ("LIVEKIT_IP_RANGE_ALLOWLIST", addressPolicy.allowlist.map(\.description).joined(separator: ",")),
            ("LIVEKIT_REDIS_URL", redisURL),
            ("LIVEKIT_JOBS_DB", jobsDatabase),
        ]
        return lines.map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
    }
}

/// Verification settings for every outgoing HTTPS connection (§2.1, §5.5).
public struct TLSSettings: Sendable, Equatable {
    /// The only value of `LIVEKIT_INSECURE_SKIP_VERIFY_TLS` that switches verification off.
    static let skipVerificationConsent = "YES_I_KNOW_WHAT_I_AM_DOING"

    public var skipVerification: Bool
    /// CA bundle replacing the system trust store (`SSL_CERT_FILE`).
    public var caFile: String?
    /// Hashed CA directory replacing the system trust store (`SSL_CERT_DIR`).
    public var caDirectory: String?

    public init(skipVerification: Bool = false, caFile: String? = nil, caDirectory: String? = nil) {
        self.skipVerification = skipVerification
        self.caFile = caFile
        self.caDirectory = caDirectory
    }
}

/// The job store chosen by `LIVEKIT_REDIS_URL` / `LIVEKIT_JOBS_DB` (§2.1, §8.9); opening it is the
/// store's business.
public enum JobStoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case redis(url: String)
    /// Per-process, neither durable nor shared.
    case memory

    /// The `LIVEKIT_JOBS_DB` value that selects `.memory`.
    static let memoryPath = ":memory:"
    /// Used when neither `LIVEKIT_JOBS_DB` nor systemd's `STATE_DIRECTORY` is set; its directory is
    /// created (mode 0700) when missing.
    static let defaultDatabasePath = "/var/lib/lkjwt-fcgi/jobs.sqlite3"

    /// `sqlite:<path>`, the Redis URL with its password masked, or `memory`; safe to log.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite:\(path)"
        case .redis(let url): Self.maskingPassword(in: url)
        case .memory: "memory"
        }
    }

    /// Replaces the password of a URL's user info with `***` (`redis://user:***@host:6379/0`); see
    /// `RedisURL.maskingPassword`, which finds the user info exactly as the parser does.
    public static func maskingPassword(in url: String) -> String {
        RedisURL.maskingPassword(in: url)
    }
}
