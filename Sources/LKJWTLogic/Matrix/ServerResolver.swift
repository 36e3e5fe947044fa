import FoundationEssentials

/// Turns a Matrix server name into the federation targets to try, in order: the server-server
/// spec's "Resolving server names" with `_matrix-fed` SRV (contract §5.3), with results cached
/// per process and concurrent lookups of one name collapsed (§5.4).
public final class ServerResolver: Sendable {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// Which discovery step failed, for the log.
        public let step: String
        public let reason: String
        public var description: String { "\(step): \(reason)" }
    }

    /// The port federation listens on when nothing else says otherwise.
    static let defaultFederationPort = 8448
    static let wellKnownSizeLimit = 51_200
    /// One SRV answer can list hundreds of targets; trying them all would turn one request into a
    /// scan (§13.1).
    static let maximumSRVTargets = 10
    /// One SRV lookup gets at most this, as the resolver's default (5 s, 2 attempts) would be too long.
    static let lookupTimeout: Duration = .seconds(5)

    enum Delegation: Sendable, Equatable {
        /// The raw `m.server` value.
        case delegated(String)
        case none(reason: String)
    }

    enum SRVResult: Sendable, Equatable {
        case records(name: String, [SRVRecord])
        case none(reason: String)
    }

    let http: any HTTPClient
    let srv: any SRVResolver
    let random: any RandomSource
    let clock: any WallClock
    let policy: DiscoveryCachePolicy
    /// Which addresses discovery and userinfo may connect to for a server name (§13.1).
    public let addressRules: OutboundAddressRules
    private let wellKnownCache: ExpiringCache<Delegation>
    private let srvCache: ExpiringCache<SRVResult>

    public init(
        http: any HTTPClient, srv: any SRVResolver, clock: any WallClock,
        random: any RandomSource, policy: DiscoveryCachePolicy = DiscoveryCachePolicy(),
        addressRules: OutboundAddressRules = .unrestricted
    ) {
        self.http = http
        self.srv = srv
        self.random = random
        self.clock = clock
        self.policy = policy
        self.addressRules = addressRules
        self.wellKnownCache = ExpiringCache(clock: clock)
        self.srvCache = ExpiringCache(clock: clock)
    }

    public func resolve(_ name: ServerName, deadline: Deadline) throws(Failure) -> [FederationTarget] {
        guard case .dns(let host) = name.host else {
            return [Self.literalTarget(name, source: "IP literal")]
        }
        if let port = name.port {
            return [FederationTarget(connectHost: host, connectPort: port, hostHeader: name.raw, tlsName: host, source: "explicit port")]
        }
        guard let delegation = wellKnownCache.value(for: host, deadline: deadline, compute: { fetchWellKnown(host, deadline: deadline) }) else {
            throw Failure(step: "well-known", reason: "gave up waiting for another request's lookup of \(host) at the deadline")
        }
        guard case .delegated(let raw) = delegation else {
            return try srvTargets(host, deadline: deadline) ?? [Self.defaultPortTarget(host)]
        }
        guard let delegated = ServerName.parse(raw) else {
            throw Failure(step: "well-known", reason: "m.server \(raw.goQuoted) of \(host) is not a valid server name")
        }
        guard case .dns(let delegatedHost) = delegated.host else {
            return [Self.literalTarget(delegated, source: "well-known of \(host), IP literal")]
        }
        if let port = delegated.port {
            return [FederationTarget(
                connectHost: delegatedHost, connectPort: port, hostHeader: raw, tlsName: delegatedHost,
                source: "well-known of \(host), explicit port")]
        }
        return try srvTargets(delegatedHost, deadline: deadline) ?? [Self.defaultPortTarget(delegatedHost)]
    }

    /// Drops what is known about a name after all its targets failed, so the next attempt resolves
    /// afresh. Failures stay: asking a dead nameserver again is what their caching prevents (§13.2).
    public func forget(_ name: ServerName) {
        guard case .dns(let host) = name.host else { return }
        if case .delegated(let raw)? = wellKnownCache.peek(host) {
            if let delegated = ServerName.parse(raw), case .dns(let delegatedHost) = delegated.host { forgetRecords(delegatedHost) }
            wellKnownCache.remove(host)
        }
        forgetRecords(host)
    }

    private func forgetRecords(_ name: String) {
        if case .records? = srvCache.peek(name) { srvCache.remove(name) }
    }

    private static func literalTarget(_ name: ServerName, source: String) -> FederationTarget {
        let address: String
        switch name.host {
        case .ipv4(let ip), .ipv6(let ip), .dns(let ip): address = ip
        }
        // The certificate must carry the IP itself; no SNI is sent for an IP.
        return FederationTarget(
            connectHost: address, connectPort: name.port ?? defaultFederationPort, hostHeader: name.raw, tlsName: address, source: source)
    }

    private static func defaultPortTarget(_ host: String) -> FederationTarget {
        FederationTarget(connectHost: host, connectPort: defaultFederationPort, hostHeader: host, tlsName: host, source: "default port")
    }

    private func fetchWellKnown(_ host: String, deadline: Deadline) -> (value: Delegation, lifetime: Duration?) {
        let request = OutboundRequest(
            url: "https://\(host)/.well-known/matrix/server", headers: [("Accept", "application/json")],
            timeout: deadline.capped(.seconds(10)), connectTimeout: deadline.capped(.seconds(5)),
            maximumRedirects: 10, redirectsOnlyToHTTPS: true, maximumResponseSize: Self.wellKnownSizeLimit,
            addressPolicy: addressRules.federation(of: host), serverName: host)
        let response: OutboundResponse
        do {
            response = try http.send(request)
        } catch {
            if error.kind == .responseTooLarge { return (.none(reason: "well-known: \(error.message)"), policy.failure) }
            return (.none(reason: "well-known unreachable: \(error.message)"), policy.unreachable)
        }
        guard response.status == 200 else {
            return (.none(reason: "well-known answered HTTP \(response.status)"), policy.failure)
        }
        guard let body = try? JSONParser.parse(response.body), case .object = body,
            let server = body["m.server"]?.stringValue, !server.isEmpty
        else {
            return (.none(reason: "well-known is not a JSON object with a string m.server"), policy.failure)
        }
        return (.delegated(server), policy.wellKnownLifetime(response, now: clock.now()))
    }

    /// Targets from `_matrix-fed._tcp` (or the deprecated `_matrix._tcp`), in RFC 2782 order; nil when there are none.
    private func srvTargets(_ name: String, deadline: Deadline) throws(Failure) -> [FederationTarget]? {
        guard let result = srvCache.value(for: name, deadline: deadline, compute: { lookUpSRV(name, deadline: deadline) }) else {
            throw Failure(step: "SRV", reason: "gave up waiting for another request's lookup of \(name) at the deadline")
        }
        guard case .records(let recordName, let records) = result else { return nil }
        let usable = records.filter { !$0.target.isEmpty && $0.target != "." }
        guard !usable.isEmpty else { return nil }
        return SRVOrdering.order(usable, random: random).prefix(Self.maximumSRVTargets).map { record in
            var target = record.target
            if target.hasSuffix(".") { target.removeLast() }
            return FederationTarget(
                connectHost: target, connectPort: Int(record.port), hostHeader: name, tlsName: name, source: "SRV \(recordName)")
        }
    }

    private func lookUpSRV(_ name: String, deadline: Deadline) -> (value: SRVResult, lifetime: Duration?) {
        var reasons: [String] = []
        for service in ["_matrix-fed._tcp.", "_matrix._tcp."] {
            let recordName = service + name
            // The resolver counts whole seconds; less than one left is no time for a fair lookup,
            // and what it did not ask it must not remember as failed.
            let timeout = deadline.capped(Self.lookupTimeout)
            guard timeout >= .seconds(1) else {
                return (.none(reason: "\(recordName): no time left for the lookup"), nil)
            }
            switch srv.lookup(recordName, timeout: timeout) {
            case .records(let records, let ttl):
                return (.records(name: recordName, records), policy.srvLifetime(ttl: ttl))
            case .notFound:
                reasons.append("\(recordName): no records")
            case .failure(let reason):
                // Fall back this time; a flood naming this server costs one lookup per period (§13.2).
                return (.none(reason: "\(recordName): \(reason)"), policy.dnsFailure)
            }
        }
        return (.none(reason: reasons.joined(separator: "; ")), policy.failure)
    }
}
