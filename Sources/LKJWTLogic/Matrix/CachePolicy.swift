import FoundationEssentials

/// How long discovery results are kept (Matrix server-server spec, "Resolving server names";
/// contract §5.4).
public struct DiscoveryCachePolicy: Sendable {
    /// A well-known answer without caching headers.
    var wellKnownDefault: Duration = .seconds(24 * 3600)
    /// Caching headers asking for more are cut to this.
    var wellKnownMaximum: Duration = .seconds(48 * 3600)
    /// A well-known that answered but was missing or invalid, and SRV names that do not exist.
    public var failure: Duration = .seconds(3600)
    /// A well-known that could not be reached at all: retried sooner, the server may just be restarting.
    var unreachable: Duration = .seconds(120)
    /// A DNS lookup that failed (timeout, SERVFAIL): not an answer, but asking again at once would
    /// let a flood naming a server with a dead nameserver cost a lookup per request (§13.2).
    var dnsFailure: Duration = .seconds(30)

    public init() {}

    /// The lifetime `Cache-Control: max-age` or `Expires` ask for, within the bounds above. Both are
    /// remote numbers of any size: clamped in whole seconds before they become a duration (§13.5).
    func wellKnownLifetime(_ response: OutboundResponse, now: Date) -> Duration {
        let maximumSeconds = wellKnownMaximum.components.seconds
        if let cacheControl = response.headers["Cache-Control"] {
            let directives = cacheControl.split(separator: ",").map { $0.trimmingSpaces().lowercased() }
            if directives.contains("no-store") || directives.contains("no-cache") { return .zero }
            if let maxAge = directives.first(where: { $0.hasPrefix("max-age=") }).flatMap({ Int64(saturatingDigits: $0.dropFirst(8)) }) {
                return .seconds(maxAge.clamped(to: 0...maximumSeconds))
            }
        }
        if let expires = response.headers["Expires"] {
            // An unparsable Expires means "already expired" (RFC 9111 §5.3).
            guard let date = HTTPDate.parse(expires) else { return .zero }
            return .seconds(Int64(saturating: date.timeIntervalSince(now)).clamped(to: 0...maximumSeconds))
        }
        return wellKnownDefault
    }

    /// How long an SRV answer is kept: its TTL (a remote number; RFC 2181 §8 makes a TTL above
    /// 2^31 − 1 mean 0), at most as long as a well-known answer.
    func srvLifetime(ttl: Int) -> Duration {
        guard ttl >= 0, ttl <= Int(Int32.max) else { return .zero }
        return .seconds(Int64(ttl).clamped(to: 0...wellKnownMaximum.components.seconds))
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
