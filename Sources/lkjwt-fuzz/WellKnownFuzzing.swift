import LKJWTLogic

/// `/.well-known/matrix/server` (with its caching headers) and `/.well-known/matrix/client` bodies, and
/// the homeserver's OpenID userinfo answer found through them.
enum WellKnownFuzzing {
    static let target = FuzzTarget(
        name: "well-known", summary: "fields: server body, Cache-Control, Expires, client body, userinfo body; discovery, CS API, OpenID") { bytes in
            let input = FuzzInput(bytes)
            var caching: [(name: String, value: String)] = [("Content-Type", "application/json")]
            if let cacheControl = input.optionalText(1), !cacheControl.isEmpty { caching.append(("Cache-Control", cacheControl)) }
            if let expires = input.optionalText(2), !expires.isEmpty { caching.append(("Expires", expires)) }
            let headers = HTTPHeaders(caching)
            let serverBody = input.bytes(0)
            let clientBody = input.fields.count > 3 ? input.bytes(3) : serverBody
            let userinfoBody = input.rest(after: 4)
            let http = ScriptedHTTPClient { request in
                if request.url.hasSuffix("/.well-known/matrix/server") { return OutboundResponse(status: 200, headers: headers, body: serverBody) }
                if request.url.hasSuffix("/.well-known/matrix/client") { return OutboundResponse(status: 200, headers: headers, body: clientBody) }
                if request.url.contains("/openid/userinfo?") { return OutboundResponse(status: 200, body: userinfoBody) }
                return OutboundResponse(status: 404)
            }
            let srv = FixedSRVResolver(answer: .records([SRVRecord(priority: 10, weight: 5, port: 8449, target: "fed.example.net.")], ttl: 300))
            let resolver = ServerResolver(http: http, srv: srv, clock: FixedClock(), random: FixedRandomSource())
            let name = ServerName.parse("example.org")!
            for _ in 0..<2 {  // the second time from the cache
                guard let targets = try? resolver.resolve(name, deadline: Deadline(after: .seconds(10))) else { continue }
                invariant(!targets.isEmpty, "no targets")
                for target in targets {
                    invariant((0...65535).contains(target.connectPort), "port \(target.connectPort)")
                    invariant(!target.connectHost.isEmpty, "empty target host")
                }
            }
            if case .verified(let userID) = OpenIDVerifier(resolver: resolver, http: http).verify(accessToken: "t", serverName: "example.org") {
                invariant(userID.hasSuffix(":example.org"), "verified \(userID.debugDescription) for example.org")
            }
            resolver.forget(name)

            let csAPI = ClientServerAPIResolver(overrides: CSAPIURLOverrides(), http: http, clock: FixedClock())
            if case .resolved(let baseURL) = csAPI.resolve("example.org") {
                invariant(!baseURL.isEmpty, "empty base URL")
                invariant(csAPI.resolve("example.org") == .resolved(baseURL: baseURL), "the cached answer differs")
                _ = DelayedEventClient(http: http, clock: FixedClock()).perform(.send, delayID: "syd_abc", baseURL: baseURL, serverName: "example.org")
            }
        }
}
