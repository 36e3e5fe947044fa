import FoundationEssentials

/// Restarts and sends MSC4140 delayed events on the client-server API (contract §9.2–§9.3).
/// No access token: the delay ID is the capability.
public struct DelayedEventClient: Sendable {
    public enum Action: String, Sendable {
        case restart, send
    }

    let http: any HTTPClient
    let clock: any WallClock
    let addressRules: OutboundAddressRules

    public init(http: any HTTPClient, clock: any WallClock, addressRules: OutboundAddressRules = .unrestricted) {
        self.http = http
        self.clock = clock
        self.addressRules = addressRules
    }

    /// `serverName` is the homeserver whose client-server API `baseURL` is: it decides whether the
    /// address policy applies (§13.1). Redirects are not followed; a 3xx is an unexpected status (§9.2).
    public func perform(_ action: Action, delayID: String, baseURL: String, serverName: String) -> DelayedEventOutcome {
        let request = OutboundRequest(
            method: .post, url: Self.url(baseURL: baseURL, delayID: delayID, action: action),
            headers: [("Content-Type", "application/json")], body: Array("{}".utf8),
            timeout: .seconds(5), maximumRedirects: 0, maximumResponseSize: 64 * 1024,
            addressPolicy: addressRules.clientServerAPI(of: serverName), serverName: serverName)
        do {
            return Self.classify(try http.send(request), now: clock.now())
        } catch {
            return .retry(after: nil, reason: error.message)
        }
    }

    /// The delay ID goes in as one percent-encoded path segment (DIFF-9), never as a path to join.
    static func url(baseURL: String, delayID: String, action: Action) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/_matrix/client/unstable/org.matrix.msc4140/delayed_events/\(encodeSegment(delayID))/\(action.rawValue)"
    }

    static func encodeSegment(_ value: String) -> String {
        if value == "." { return "%2E" }
        if value == ".." { return "%2E%2E" }
        return PercentEncoding.encode(value)
    }

    /// §9.3: the same table for restart and send; what 404 means differs by action and is the caller's.
    static func classify(_ response: OutboundResponse, now: Date) -> DelayedEventOutcome {
        switch response.status {
        case 200, 204:
            return .success
        case 404:
            return .notFound
        case 429:
            return .retry(after: retryAfter(response, now: now), reason: "CS API rate limited the request (http status code 429)")
        case 500...599:
            return .retry(after: nil, reason: "CS API temporarily unavailable (http status code \(response.status))")
        default:
            return .retry(after: nil, reason: "CS API returned unexpected status: \(response.status)")
        }
    }

    /// Milliseconds to wait from `Retry-After` (seconds or HTTP date), else the body's `retry_after_ms`
    /// rounded up to whole seconds; nil when neither is usable. The header wins. Any size of number
    /// is accepted and saturates at `Int64.max` (§13.5): the retry policy compares it with the time
    /// the activity has left.
    static func retryAfter(_ response: OutboundResponse, now: Date) -> Int64? {
        if let header = response.headers["Retry-After"]?.trimmingSpaces() {
            var digits = Substring(header)
            var negative = false
            if let sign = digits.first, sign == "+" || sign == "-" {
                negative = sign == "-"
                digits = digits.dropFirst()
            }
            if let seconds = Int64(saturatingDigits: digits) {
                return negative ? 0 : seconds.saturatingMultiplied(by: 1000)
            }
            if let date = HTTPDate.parse(header) {
                return max(0, Int64(saturating: date.timeIntervalSince(now))).saturatingMultiplied(by: 1000)
            }
        }
        // An integer literal only: a fraction, an exponent or a sign makes the hint unusable.
        if case .number(let literal)? = (try? JSONParser.parse(response.body))?["retry_after_ms"],
            let milliseconds = Int64(saturatingDigits: Substring(literal)), milliseconds > 0
        {
            let seconds = milliseconds / 1000 + (milliseconds % 1000 == 0 ? 0 : 1)
            return seconds.saturatingMultiplied(by: 1000)
        }
        return nil
    }
}
