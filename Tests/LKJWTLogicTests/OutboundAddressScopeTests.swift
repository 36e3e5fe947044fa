import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

/// Every request whose destination a request or a remote server chose carries the address policy,
/// with the redirect rules of §13.1; the operator's own destinations and listed servers carry none.
struct OutboundAddressScopeTests {
    static let rules = OutboundAddressRules(
        policy: .standard, accessPolicy: AccessPolicy.parse("listed.example"),
        overrides: CSAPIURLOverrides(["overridden.example": "http://10.0.0.5:8008"]))

    static func answering(_ respond: @escaping @Sendable (OutboundRequest) -> OutboundResponse) -> ScriptedHTTPClient {
        ScriptedHTTPClient { request throws(OutboundError) in respond(request) }
    }

    static func resolver(_ http: ScriptedHTTPClient, srv: [String: SRVAnswer] = [:]) -> ServerResolver {
        ServerResolver(http: http, srv: TableSRVResolver(srv), clock: MovableClock(), random: FixedRandomSource(byte: 0), addressRules: rules)
    }

    @Test func federationDiscoveryAndUserinfoAreChecked() throws {
        let http = Self.answering { request in
            request.url.contains("/.well-known/") ? .json(200, #"{"m.server":"matrix.evil.example:8448"}"#) : .json(200, #"{"sub":"@u:evil.example"}"#)
        }
        let verifier = OpenIDVerifier(resolver: Self.resolver(http), http: http)
        #expect(verifier.verify(accessToken: "t", serverName: "evil.example") == .verified(userID: "@u:evil.example"))
        let wellKnown = try #require(http.requests(containing: "/.well-known/matrix/server").first)
        #expect(wellKnown.addressPolicy == .standard)
        #expect(wellKnown.serverName == "evil.example")
        #expect(wellKnown.maximumRedirects == 10)
        #expect(wellKnown.redirectsOnlyToHTTPS)
        let userinfo = try #require(http.requests(containing: "/openid/userinfo").first)
        #expect(userinfo.addressPolicy == .standard)
        #expect(userinfo.serverName == "evil.example")
        #expect(userinfo.maximumRedirects == 0)
    }

    @Test func aListedServerAndWhatItDelegatesToAreExempt() throws {
        let http = Self.answering { request in
            request.url.contains("/.well-known/") ? .json(200, #"{"m.server":"10.0.0.7:8448"}"#) : .json(200, #"{"sub":"@u:listed.example"}"#)
        }
        let verifier = OpenIDVerifier(resolver: Self.resolver(http), http: http)
        #expect(verifier.verify(accessToken: "t", serverName: "listed.example") == .verified(userID: "@u:listed.example"))
        #expect(http.requests.count == 2)
        #expect(http.requests.allSatisfy { $0.addressPolicy == nil })
        #expect(http.requests.last?.connectAddress == "10.0.0.7:8448")
    }

    @Test func atMostTenSRVTargetsAreTried() throws {
        let records = (1...300).map { SRVRecord(priority: UInt16($0), weight: 0, port: 8448, target: "t\($0).evil.example") }
        let http = ScriptedHTTPClient { request throws(OutboundError) in
            if request.url.contains("/.well-known/") { return .json(404, "") }
            throw OutboundError(.transport, "address 10.0.0.1 is in LIVEKIT_IP_RANGE_BLOCKLIST")
        }
        let resolver = Self.resolver(http, srv: ["_matrix-fed._tcp.evil.example": .records(records, ttl: 300)])
        let targets = try resolver.resolve(try #require(ServerName.parse("evil.example")), deadline: Deadline(after: .seconds(10)))
        #expect(targets.map(\.connectHost) == (1...10).map { "t\($0).evil.example" })
        guard case .rejected(step: "userinfo", _) = OpenIDVerifier(resolver: resolver, http: http).verify(accessToken: "t", serverName: "evil.example") else {
            Issue.record("expected a userinfo failure")
            return
        }
        // Two rounds (§5.1 step 4) of at most ten targets each.
        #expect(http.requests(containing: "/openid/userinfo").count == 20)
    }

    @Test func clientWellKnownIsCheckedFollowsFiveHTTPSRedirectsAndWaitsTenSeconds() throws {
        let http = Self.answering { _ in .json(200, #"{"m.homeserver":{"base_url":"https://matrix.evil.example"}}"#) }
        let resolver = ClientServerAPIResolver(overrides: CSAPIURLOverrides(), http: http, clock: MovableClock(), addressRules: Self.rules)
        #expect(resolver.resolve("evil.example") == .resolved(baseURL: "https://matrix.evil.example"))
        #expect(resolver.resolve("listed.example") == .resolved(baseURL: "https://matrix.evil.example"))
        let (checked, exempt) = (http.requests[0], http.requests[1])
        #expect(checked.addressPolicy == .standard)
        #expect(checked.serverName == "evil.example")
        #expect(checked.maximumRedirects == 5)
        #expect(checked.redirectsOnlyToHTTPS)
        #expect(exempt.addressPolicy == nil)
        #expect(ClientServerAPIResolver.discoveryTimeout == .seconds(10))
    }

    @Test func delayedEventActionsAreCheckedAndFollowNoRedirect() throws {
        let http = Self.answering { _ in OutboundResponse(status: 307, headers: [("Location", "http://127.0.0.1/kill")]) }
        let client = DelayedEventClient(http: http, clock: FixedClock(), addressRules: Self.rules)
        #expect(client.perform(.restart, delayID: "d", baseURL: "https://matrix.evil.example", serverName: "evil.example")
            == .retry(after: nil, reason: "CS API returned unexpected status: 307"))
        _ = client.perform(.send, delayID: "d", baseURL: "http://10.0.0.5:8008", serverName: "overridden.example")
        _ = client.perform(.send, delayID: "d", baseURL: "http://10.0.0.6:8008", serverName: "listed.example")
        #expect(http.requests.map(\.maximumRedirects) == [0, 0, 0])
        #expect(http.requests.map(\.addressPolicy) == [.standard, nil, nil])
        #expect(http.requests[0].serverName == "evil.example")
    }
}
