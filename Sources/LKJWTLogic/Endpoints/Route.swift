/// The endpoints, matched on the tail of the request path so any mount prefix works (contract §3.1).
public enum Route: String, Sendable, CaseIterable {
    case getToken = "/get_token"
    case legacyToken = "/sfu/get"
    case delegateDelayedLeave = "/delegate_delayed_leave"
    case sfuWebhook = "/sfu_webhook"
    case healthz = "/healthz"

    /// Endpoint paths start with `/`, so a suffix match always ends on a segment boundary. A Matrix
    /// path (`…/_matrix/client/v1/rtc/livekit/get_token`) is never a standalone endpoint (§3.1 rev. 2).
    public static func match(path: String) -> Route? {
        guard !path.contains("/_matrix/") else { return nil }
        return allCases.first { path.hasSuffix($0.rawValue) }
    }
}
