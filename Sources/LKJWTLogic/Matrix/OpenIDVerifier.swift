/// Checks a Matrix OpenID token with the homeserver that issued it, over federation (contract §5.1).
public struct OpenIDVerifier: Sendable {
    public enum Outcome: Sendable, Equatable {
        case verified(userID: String)
        /// `step` names what failed (for operators); clients only ever see 401.
        case rejected(step: String, reason: String)
        /// Not tried: the budget for servers not known to answer is spent (§13.3).
        case refused(reason: String)
    }

    /// The whole verification, discovery included: a dead homeserver costs a client at most this.
    public static let defaultBudget: Duration = .seconds(10)

    let resolver: ServerResolver
    let http: any HTTPClient
    let budget: Duration
    let admission: DestinationAdmission?

    public init(
        resolver: ServerResolver, http: any HTTPClient, budget: Duration = OpenIDVerifier.defaultBudget, admission: DestinationAdmission? = nil
    ) {
        self.resolver = resolver
        self.http = http
        self.budget = budget
        self.admission = admission
    }

    public func verify(accessToken: String, serverName rawServerName: String) -> Outcome {
        guard let serverName = ServerName.parse(rawServerName) else {
            return .rejected(step: "server name", reason: "\"\(rawServerName)\" is not a valid server name")
        }
        let deadline = Deadline(after: budget)
        let addressPolicy = resolver.addressRules.federation(of: rawServerName)
        let decision = admission?.admit(rawServerName, deadline: deadline) ?? .known
        if case .refused(let reason) = decision { return .refused(reason: reason) }
        var answered = false
        defer { admission?.finish(rawServerName, decision: decision, answered: answered) }
        let path = "/_matrix/federation/v1/openid/userinfo?access_token=" + OpenIDVerifier.formEncode(accessToken)

        var response: OutboundResponse?
        var lastFailure = ""
        // A second round after all targets failed: cached discovery may be stale (§5.1 step 4).
        for round in 0..<2 where response == nil && !deadline.hasPassed {
            let targets: [FederationTarget]
            do {
                targets = try resolver.resolve(serverName, deadline: deadline)
            } catch {
                return .rejected(step: "discovery (\(error.step))", reason: error.reason)
            }
            for target in targets where !deadline.hasPassed {
                let request = OutboundRequest(
                    url: target.url(path: path), headers: [("Host", target.hostHeader), ("Accept", "application/json")],
                    timeout: deadline.capped(budget), connectTimeout: deadline.capped(.seconds(5)),
                    connectAddress: target.connectAddress, maximumRedirects: 0, maximumResponseSize: 64 * 1024,
                    addressPolicy: addressPolicy, serverName: rawServerName)
                do {
                    response = try http.send(request)
                    break
                } catch {
                    lastFailure = "\(target): \(error.message)"
                    if error.kind != .transport { return .rejected(step: "userinfo", reason: lastFailure) }
                }
            }
            if response == nil, round == 0 { resolver.forget(serverName) }
        }
        guard let response else {
            return .rejected(step: "userinfo", reason: lastFailure.isEmpty ? "verification took too long" : lastFailure)
        }
        answered = true
        return OpenIDVerifier.evaluate(response, serverName: rawServerName)
    }

    /// Steps 5–8 of §5.1: a 2xx answer naming a user of exactly that server.
    static func evaluate(_ response: OutboundResponse, serverName: String) -> Outcome {
        guard (200..<300).contains(response.status) else {
            return .rejected(step: "userinfo", reason: "homeserver answered HTTP \(response.status)")
        }
        guard let body = try? JSONParser.parse(response.body), case .object = body, let sub = body["sub"]?.stringValue else {
            return .rejected(step: "userinfo", reason: "answer is not a JSON object with a string \"sub\"")
        }
        guard let colon = sub.firstIndex(of: ":"), sub[sub.index(after: colon)...] == serverName else {
            return .rejected(step: "userinfo", reason: "user \(sub) does not belong to \(serverName)")
        }
        return .verified(userID: sub)
    }

    /// `application/x-www-form-urlencoded` as Go's `url.QueryEscape`: unreserved bytes kept, space as `+`.
    static func formEncode(_ value: String) -> String {
        PercentEncoding.encode(value, spaceAsPlus: true)
    }
}
