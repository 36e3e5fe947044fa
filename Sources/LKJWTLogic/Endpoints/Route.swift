/// The endpoints, matched on the tail of the request path so any mount prefix works (contract §3.1).
public enum Route: String, Sendable, CaseIterable {
    case getToken = "/get_token"
    case legacyToken = "/sfu/get"
    case delegateDelayedLeave = "/delegate_delayed_leave"
    case sfuWebhook = "/sfu_webhook"
    case healthz = "/healthz"

    /// Endpoint paths start with `/`, so a suffix match always ends on a segment boundary.
    public static func match(path: String) -> Route? {
        allCases.first { path.hasSuffix($0.rawValue) }
    }
}
