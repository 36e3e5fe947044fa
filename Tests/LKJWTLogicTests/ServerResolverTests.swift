import FoundationEssentials
import Glibc
import LKJWTTestSupport
import Synchronization
import Testing

@testable import LKJWTLogic

struct ServerResolverTests {
    /// A homeserver world: well-known answers by host, SRV answers by record name.
    struct World {
        var wellKnown: [String: OutboundResponse] = [:]
        var srv: [String: SRVAnswer] = [:]
    }

    struct Fixture {
        let http: ScriptedHTTPClient
        let dns: TableSRVResolver
        let clock = MovableClock()
        let resolver: ServerResolver

        init(_ world: World) {
            let wellKnown = world.wellKnown
            http = ScriptedHTTPClient { request throws(OutboundError) in
                let host = String(request.url.dropFirst("https://".count).prefix { $0 != "/" })
                guard let response = wellKnown[host] else { throw OutboundError(.transport, "Could not resolve host: \(host)") }
                return response
            }
            dns = TableSRVResolver(world.srv)
            resolver = ServerResolver(http: http, srv: dns, clock: clock, random: FixedRandomSource(byte: 0))
        }

        func resolve(_ name: String) throws -> [FederationTarget] {
            try resolver.resolve(try #require(ServerName.parse(name)), deadline: Deadline(after: .seconds(10)))
        }

        var wellKnownFetches: Int { http.requests(containing: "/.well-known/matrix/server").count }
    }

    static func delegation(_ server: String, headers: HTTPHeaders = []) -> OutboundResponse {
        OutboundResponse(status: 200, headers: headers, body: Array(#"{"m.server":"\#(server)"}"#.utf8))
    }

    struct Expectation: Sendable, CustomStringConvertible {
        let name: String
        let world: World
        /// "connect host:port | Host header | TLS name" per target.
        let targets: [String]
        var description: String { name }
    }

    static let table: [Expectation] = [
        Expectation(name: "1.2.3.4", world: World(), targets: ["1.2.3.4:8448 | 1.2.3.4 | 1.2.3.4"]),
        Expectation(name: "1.2.3.4:8000", world: World(), targets: ["1.2.3.4:8000 | 1.2.3.4:8000 | 1.2.3.4"]),
        Expectation(name: "[2001:db8::1]", world: World(), targets: ["2001:db8::1:8448 | [2001:db8::1] | 2001:db8::1"]),
        Expectation(name: "[2001:db8::1]:8000", world: World(), targets: ["2001:db8::1:8000 | [2001:db8::1]:8000 | 2001:db8::1"]),
        Expectation(name: "example.org:8000", world: World(), targets: ["example.org:8000 | example.org:8000 | example.org"]),
        Expectation(name: "example.org", world: World(), targets: ["example.org:8448 | example.org | example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": delegation("matrix.example.org")]),
            targets: ["matrix.example.org:8448 | matrix.example.org | matrix.example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": delegation("matrix.example.org:443")]),
            targets: ["matrix.example.org:443 | matrix.example.org:443 | matrix.example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": delegation("10.0.0.1:8000")]),
            targets: ["10.0.0.1:8000 | 10.0.0.1:8000 | 10.0.0.1"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": delegation("[::1]")]),
            targets: ["::1:8448 | [::1] | ::1"]),
        Expectation(
            name: "example.org",
            world: World(
                wellKnown: ["example.org": delegation("matrix.example.org")],
                srv: ["_matrix-fed._tcp.matrix.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 8443, target: "fed.example.net.")], ttl: 300)]),
            targets: ["fed.example.net:8443 | matrix.example.org | matrix.example.org"]),
        Expectation(
            name: "example.org",
            world: World(srv: ["_matrix-fed._tcp.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 443, target: "fed.example.org")], ttl: 300)]),
            targets: ["fed.example.org:443 | example.org | example.org"]),
        Expectation(
            name: "example.org",
            world: World(srv: ["_matrix._tcp.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 8449, target: "old.example.org")], ttl: 300)]),
            targets: ["old.example.org:8449 | example.org | example.org"]),
        Expectation(
            name: "example.org",
            world: World(srv: [
                "_matrix-fed._tcp.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 443, target: "new.example.org")], ttl: 300),
                "_matrix._tcp.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 8449, target: "old.example.org")], ttl: 300),
            ]),
            targets: ["new.example.org:443 | example.org | example.org"]),
        Expectation(
            name: "example.org",
            world: World(srv: ["_matrix-fed._tcp.example.org": .records([
                SRVRecord(priority: 20, weight: 0, port: 3, target: "c.example.org"),
                SRVRecord(priority: 10, weight: 5, port: 1, target: "a.example.org"),
                SRVRecord(priority: 10, weight: 5, port: 2, target: "b.example.org"),
            ], ttl: 300)]),
            targets: ["a.example.org:1 | example.org | example.org", "b.example.org:2 | example.org | example.org", "c.example.org:3 | example.org | example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": .json(404, "{}")]),
            targets: ["example.org:8448 | example.org | example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": .json(200, #"{"m.server":""}"#)]),
            targets: ["example.org:8448 | example.org | example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": .json(200, "not json")]),
            targets: ["example.org:8448 | example.org | example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": .json(200, #"["m.server"]"#)]),
            targets: ["example.org:8448 | example.org | example.org"]),
        Expectation(
            name: "example.org", world: World(wellKnown: ["example.org": .json(200, #"{"m.server":42}"#)]),
            targets: ["example.org:8448 | example.org | example.org"]),
        Expectation(
            name: "example.org",
            world: World(srv: ["_matrix-fed._tcp.example.org": .failure("SERVFAIL")]),
            targets: ["example.org:8448 | example.org | example.org"]),
    ]

    @Test(arguments: table)
    func resolution(_ expectation: Expectation) throws {
        let targets = try Fixture(expectation.world).resolve(expectation.name)
        #expect(targets.map { "\($0.connectHost):\($0.connectPort) | \($0.hostHeader) | \($0.tlsName)" } == expectation.targets)
    }

    @Test func invalidDelegationFailsTheVerification() {
        let fixture = Fixture(World(wellKnown: ["example.org": Self.delegation("bad_name")]))
        #expect(throws: ServerResolver.Failure.self) { try fixture.resolve("example.org") }
    }

    @Test func explicitPortsAndLiteralsNeverAskForWellKnownOrSRV() throws {
        let fixture = Fixture(World())
        _ = try fixture.resolve("example.org:8448")
        _ = try fixture.resolve("127.0.0.1")
        #expect(fixture.http.requests.isEmpty)
        #expect(fixture.dns.lookups.isEmpty)
    }

    @Test func wellKnownRequestFollowsTheSpec() throws {
        let fixture = Fixture(World(wellKnown: ["example.org": Self.delegation("m.example.org")]))
        _ = try fixture.resolve("example.org")
        #expect(fixture.http.requests.first?.url == "https://example.org/.well-known/matrix/server")
        #expect(fixture.dns.lookups == ["_matrix-fed._tcp.m.example.org", "_matrix._tcp.m.example.org"])
    }

    @Test func resultsAreCachedAcrossRequests() throws {
        let fixture = Fixture(World(
            wellKnown: ["example.org": Self.delegation("m.example.org")],
            srv: ["_matrix-fed._tcp.m.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 443, target: "fed.example.org")], ttl: 600)]))
        for _ in 0..<100 { _ = try fixture.resolve("example.org") }
        #expect(fixture.wellKnownFetches == 1)
        #expect(fixture.dns.lookups.count == 1)
        // The SRV TTL runs out before the well-known's default day.
        fixture.clock.advance(seconds: 601)
        _ = try fixture.resolve("example.org")
        #expect(fixture.wellKnownFetches == 1)
        #expect(fixture.dns.lookups.count == 2)
        fixture.clock.advance(seconds: 24 * 3600)
        _ = try fixture.resolve("example.org")
        #expect(fixture.wellKnownFetches == 2)
    }

    @Test func concurrentLookupsOfOneNameCollapse() throws {
        let fixture = Fixture(World(wellKnown: ["example.org": Self.delegation("m.example.org:443")]))
        let name = try #require(ServerName.parse("example.org"))
        DispatchApply.concurrentPerform(iterations: 32) { _ in
            _ = try? fixture.resolver.resolve(name, deadline: Deadline(after: .seconds(10)))
        }
        #expect(fixture.wellKnownFetches == 1)
    }

    @Test func failuresAreCachedForAnHourAndUnreachableServersForLess() throws {
        let missing = Fixture(World(wellKnown: ["example.org": .json(404, "")]))
        _ = try missing.resolve("example.org")
        missing.clock.advance(seconds: 3599)
        _ = try missing.resolve("example.org")
        #expect(missing.wellKnownFetches == 1)
        missing.clock.advance(seconds: 2)
        _ = try missing.resolve("example.org")
        #expect(missing.wellKnownFetches == 2)

        let unreachable = Fixture(World())
        _ = try unreachable.resolve("example.org")
        unreachable.clock.advance(seconds: 121)
        _ = try unreachable.resolve("example.org")
        #expect(unreachable.wellKnownFetches == 2)
    }

    @Test func forgettingANameResolvesItAfresh() throws {
        let fixture = Fixture(World(
            wellKnown: ["example.org": Self.delegation("m.example.org")],
            srv: ["_matrix-fed._tcp.m.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 443, target: "fed.example.org")], ttl: 600)]))
        _ = try fixture.resolve("example.org")
        fixture.resolver.forget(try #require(ServerName.parse("example.org")))
        _ = try fixture.resolve("example.org")
        #expect(fixture.wellKnownFetches == 2)
        #expect(fixture.dns.lookups.count == 2)
    }

    @Test(arguments: [
        ([("Cache-Control", "max-age=600")], 600),
        ([("Cache-Control", "public, max-age=7200")], 7200),
        ([("Cache-Control", "max-age=999999")], 48 * 3600),
        ([("Cache-Control", "no-store")], 0),
        ([("Expires", "Thu, 16 Nov 2023 00:13:20 GMT")], 3600),
        ([("Expires", "garbage")], 0),
        ([("Cache-Control", "max-age=60"), ("Expires", "Thu, 16 Nov 2023 00:13:20 GMT")], 60),
        ([], 24 * 3600),
    ] as [([(name: String, value: String)], Int64)])
    func wellKnownLifetimes(headers: [(name: String, value: String)], seconds: Int64) {
        let lifetime = DiscoveryCachePolicy().wellKnownLifetime(OutboundResponse(status: 200, headers: HTTPHeaders(headers)), now: Date(timeIntervalSince1970: 1_700_090_000))
        #expect(lifetime == .seconds(seconds))
    }

    @Test(arguments: [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777.0),
        ("Sun Nov  6 08:49:37 1994", 784_111_777.0),
    ])
    func httpDates(text: String, seconds: Double) {
        #expect(HTTPDate.parse(text)?.timeIntervalSince1970 == seconds)
    }

    @Test(arguments: ["", "Sun, 06 Nov 1994 08:49:37 CET", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "1994-11-06"])
    func invalidHTTPDates(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test func srvOrderingFollowsWeights() {
        let records = [
            SRVRecord(priority: 1, weight: 0, port: 1, target: "zero"),
            SRVRecord(priority: 1, weight: 10, port: 2, target: "ten"),
            SRVRecord(priority: 0, weight: 1, port: 3, target: "first"),
        ]
        #expect(SRVOrdering.order(records, random: FixedRandomSource(byte: 0)).map(\.target) == ["first", "zero", "ten"])
        #expect(SRVOrdering.order(records, random: FixedRandomSource(byte: 0xFF)).map(\.target) == ["first", "ten", "zero"])
    }
}
