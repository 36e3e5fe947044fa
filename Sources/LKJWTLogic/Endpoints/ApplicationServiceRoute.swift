/// The application-service endpoints (AS-MODE.md B2), matched on the tail of the path like the
/// standalone ones (contract §3.1), in both the unstable and the `v1` forms: Synapse forwards any
/// version segment.
public enum ApplicationServiceRoute: Sendable, Equatable, CaseIterable {
    case clientGetToken
    case clientDelegateDelayedLeave
    case federationGetToken
    case ping
    /// `PUT /_matrix/app/v1/transactions/{txnId}`: answered so that a registration with a `url`
    /// does not make Synapse mark the service down (AS-MODE-NOTES §6 item 19).
    case transaction

    static let clientPrefixes = ["/_matrix/client/unstable/io.element.msc4195/rtc/livekit/", "/_matrix/client/v1/rtc/livekit/"]
    static let federationPrefixes = ["/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/", "/_matrix/federation/v1/rtc/livekit/"]
    static let transactionsPrefix = "/_matrix/app/v1/transactions/"

    public static func match(path: String) -> ApplicationServiceRoute? {
        if clientPrefixes.contains(where: { path.hasSuffix($0 + "get_token") }) { return .clientGetToken }
        if clientPrefixes.contains(where: { path.hasSuffix($0 + "delegate_delayed_leave") }) { return .clientDelegateDelayedLeave }
        if federationPrefixes.contains(where: { path.hasSuffix($0 + "get_token") }) { return .federationGetToken }
        if path.hasSuffix("/_matrix/app/v1/ping") { return .ping }
        if let range = path.ranges(of: transactionsPrefix).last {
            let transactionID = path[range.upperBound...]
            if !transactionID.isEmpty, !transactionID.contains("/") { return .transaction }
        }
        return nil
    }

    /// Client endpoints answer browsers too (contract §3.2); the others only homeservers.
    var headers: HTTPHeaders {
        switch self {
        case .clientGetToken, .clientDelegateDelayedLeave: CORS.headers
        case .federationGetToken, .ping, .transaction: [("Content-Type", "application/json")]
        }
    }
}
