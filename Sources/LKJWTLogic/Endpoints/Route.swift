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
        guard !isMatrixPath(path) else { return nil }
        return allCases.first { path.hasSuffix($0.rawValue) }
    }

    /// Whether `path` holds `/_matrix/`, searched as bytes: `String.contains(String)` goes through
    /// the generic substring searcher, 3 % of a token request's CPU (two calls per request).
    static func isMatrixPath(_ path: String) -> Bool {
        let marker: StaticString = "/_matrix/"
        var path = path
        return path.withUTF8 { bytes in
            let needle = UnsafeBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
            guard bytes.count >= needle.count else { return false }
            for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
                if UnsafeBufferPointer(rebasing: bytes[start..<(start + needle.count)]).elementsEqual(needle) { return true }
            }
            return false
        }
    }
}
