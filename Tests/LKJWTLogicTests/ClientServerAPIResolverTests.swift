import Testing

@testable import LKJWTLogic

struct ClientServerAPIResolverTests {
    static func resolver(_ response: OutboundResponse?, overrides: [String: String] = [:], clock: MovableClock = MovableClock()) -> (ClientServerAPIResolver, ScriptedHTTPClient) {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in
            guard let response else { throw OutboundError(.transport, "Connection refused") }
            return response
        }
        return (ClientServerAPIResolver(overrides: CSAPIURLOverrides(overrides), http: http, clock: clock), http)
    }

    @Test func discoversTheBaseURLAndCachesItForFourHours() {
        let clock = MovableClock()
        let (resolver, http) = Self.resolver(.json(200, #"{"m.homeserver":{"base_url":"https://matrix.example.org"}}"#), clock: clock)
        #expect(resolver.resolve("example.org") == .resolved(baseURL: "https://matrix.example.org"))
        #expect(http.requests.first?.url == "https://example.org/.well-known/matrix/client")
        clock.advance(seconds: 4 * 3600 - 1)
        _ = resolver.resolve("example.org")
        #expect(http.requests.count == 1)
        clock.advance(seconds: 2)
        _ = resolver.resolve("example.org")
        #expect(http.requests.count == 2)
    }

    @Test func overridesWinWithoutARequest() {
        let (resolver, http) = Self.resolver(nil, overrides: ["example.org": "http://127.0.0.1:8008"])
        #expect(resolver.resolve("example.org") == .resolved(baseURL: "http://127.0.0.1:8008"))
        #expect(http.requests.isEmpty)
    }

    @Test func failuresAreNotCached() {
        let (resolver, http) = Self.resolver(.json(404, ""))
        #expect(resolver.resolve("example.org") == .failed(reason: "no .well-known/matrix/client record found for example.org"))
        _ = resolver.resolve("example.org")
        #expect(http.requests.count == 2)
    }

    @Test(arguments: [
        OutboundResponse.json(500, #"{"m.homeserver":{"base_url":"https://m"}}"#),
        .json(200, #"{"m.homeserver":{"base_url":""}}"#),
        .json(200, #"{"m.homeserver":"https://m"}"#),
        .json(200, "nope"),
    ])
    func invalidAnswersFail(response: OutboundResponse) {
        guard case .failed = Self.resolver(response).0.resolve("example.org") else {
            Issue.record("expected a failure")
            return
        }
    }

    @Test(arguments: [
        "http://127.0.0.1:18081/containers/abc/kill?signal=KILL#", "https://matrix.example.org/?", "https://matrix.example.org#",
        "https://matrix.example.org/#x", "https://user:pass@matrix.example.org", "https://user@matrix.example.org",
        "ftp://matrix.example.org", "matrix.example.org", "/_matrix", "//matrix.example.org", "http:/matrix.example.org",
        "http://", "http:///path", "https://matrix.example.org/a b", "https://matrix.example.org/\r\nX: y", "https://matrix.example.org\\@evil",
        "javascript:alert(1)", "file:///etc/passwd",
    ])
    func baseURLsThatAreNotPlainHTTPOrHTTPSAreNoBaseURL(baseURL: String) {
        let document = JSONValue.object([JSONMember("m.homeserver", .object([JSONMember("base_url", .string(baseURL))]))]).serialized()
        let (resolver, _) = Self.resolver(.json(200, document))
        guard case .failed(let reason) = resolver.resolve("example.org") else {
            Issue.record("\(baseURL) was accepted")
            return
        }
        #expect(reason.contains("unusable m.homeserver.base_url"))
    }

    @Test(arguments: ["https://matrix.example.org", "http://127.0.0.1:8008", "HTTPS://Matrix.Example.org/prefix/", "https://[2001:db8::1]:8448/"])
    func plainHTTPAndHTTPSBaseURLsAreUsedVerbatim(baseURL: String) {
        let document = JSONValue.object([JSONMember("m.homeserver", .object([JSONMember("base_url", .string(baseURL))]))]).serialized()
        #expect(Self.resolver(.json(200, document)).0.resolve("example.org") == .resolved(baseURL: baseURL))
    }
}
