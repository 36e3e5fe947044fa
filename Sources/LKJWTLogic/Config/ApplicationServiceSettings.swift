/// The application-service side of the configuration (AS-MODE.md B1): present only when the tokens
/// and `LIVEKIT_HS_SERVER_NAME` are all set. Its tokens are secrets: never in a description or log.
public struct ApplicationServiceSettings: Sendable, Equatable, CustomStringConvertible {
    /// Where the tokens came from, for `--check-config` and the start-up log.
    public enum TokenSource: Sendable, Equatable {
        case registrationFile(path: String)
        case environment
    }

    /// Sent to the homeserver as `Authorization: Bearer <as_token>`; it never leaves `serverName`'s
    /// client-server API (B2.8).
    public var asToken: String
    /// What the homeserver sends us as `Authorization: Bearer <hs_token>` on every proxied request.
    public var hsToken: String
    /// The one homeserver this service is an application service of (`LIVEKIT_HS_SERVER_NAME`).
    public var serverName: String
    public var tokenSource: TokenSource

    public init(asToken: String, hsToken: String, serverName: String, tokenSource: TokenSource = .environment) {
        self.asToken = asToken
        self.hsToken = hsToken
        self.serverName = serverName
        self.tokenSource = tokenSource
    }

    public var description: String {
        switch tokenSource {
        case .registrationFile(let path): "\(serverName) (tokens from \(path))"
        case .environment: "\(serverName) (tokens from LIVEKIT_AS_TOKEN and LIVEKIT_HS_TOKEN)"
        }
    }
}
