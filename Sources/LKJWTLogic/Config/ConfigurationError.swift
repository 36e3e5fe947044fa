/// A start-up failure. `message` is printed to stderr verbatim before exiting with status 1, so the
/// texts below are the exact ones of contract §2.3.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(message: String) {
        self.message = message
    }

    public var description: String { message }

    /// Row 2: a key or secret file could not be read; upstream prints the OS error as is.
    static func unreadableFile(_ error: any Error) -> ConfigurationError {
        ConfigurationError(message: "\(error)")
    }

    /// Row 2.
    static let invalidKeySecretFileFormat = ConfigurationError(message: "invalid key secret file format!")

    /// Row 3.
    static let missingCredentials = ConfigurationError(message: "LIVEKIT_KEY* / LIVEKIT_SECRET* and LIVEKIT_URL must be set")

    /// Row 5.
    static let bindAndPortTogether = ConfigurationError(message: "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT must not be set together")

    /// Extension after row 5.
    static func invalidBind(_ value: String) -> ConfigurationError {
        ConfigurationError(message: "LIVEKIT_JWT_BIND is not a valid listen address: \(value.goQuoted)")
    }

    /// Extension after row 5.
    static func invalidPort(_ value: String) -> ConfigurationError {
        ConfigurationError(message: "LIVEKIT_JWT_PORT must be a port number, got \(value.goQuoted)")
    }

    /// Row 6.
    static func invalidSanityCheckInterval(_ value: String) -> ConfigurationError {
        ConfigurationError(message: "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got \(value.goQuoted)")
    }

    /// Row 7.
    static func invalidCSAPIURLOverride(entry: String) -> ConfigurationError {
        ConfigurationError(message: "failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry \(entry.goQuoted), expected server_name=url")
    }

    /// Row 12, checked right after row 7.
    static func invalidIPRangeEntry(variable: String, entry: String) -> ConfigurationError {
        ConfigurationError(message: "Invalid \(variable) entry \(entry.goQuoted): expected an IP address or CIDR range")
    }

    /// Row 8, raised when the Redis store is opened.
    public static func invalidRedisURL(_ url: String, detail: String) -> ConfigurationError {
        ConfigurationError(message: "Could not connect Redis store: store: invalid Redis URL \(url.goQuoted): \(detail)")
    }

    /// Row 9, raised when the Redis store is opened.
    public static func redisPingFailed(detail: String) -> ConfigurationError {
        ConfigurationError(message: "Could not connect Redis store: store: Redis ping failed: \(detail)")
    }

    /// Row 10, raised when the SQLite store is opened.
    public static func jobsDatabaseUnavailable(path: String, detail: String) -> ConfigurationError {
        ConfigurationError(message: "Could not open jobs database \(path.goQuoted): \(detail)")
    }

    /// Row 11, raised when the listen socket is opened.
    public static func cannotListen(address: String, detail: String) -> ConfigurationError {
        ConfigurationError(message: "Could not listen on \(address.goQuoted): \(detail)")
    }
}
