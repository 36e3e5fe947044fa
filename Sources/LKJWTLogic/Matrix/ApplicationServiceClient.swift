import FoundationEssentials

/// Every call the service makes to its homeserver as an application service (AS-MODE.md B2, B3),
/// authenticated with `Authorization: Bearer <as_token>`. They all go to the client-server API of
/// `serverName` (`LIVEKIT_HS_SERVER_NAME`) and nowhere else (B2.8): the base URL is resolved here,
/// redirects are never followed, and the operator configured the destination, so the address
/// policy of §13.1 does not apply.
public struct ApplicationServiceClient: Sendable {
    /// What `is_joined` is asked about (MSC4502): exactly one of a user or a server.
    public enum Subject: Sendable, Equatable {
        case user(String)
        case server(String)
    }

    /// A call that gave no usable answer; `reason` is for the log.
    public struct Failure: Error, Sendable, Equatable {
        public let reason: String
    }

    /// The answer to a delayed-event look-up (AS-MODE-NOTES §3.2).
    public enum DelayedEventLookup: Sendable, Equatable {
        /// Pending, in that room, with that delay in milliseconds.
        case found(roomID: String, delay: Int64)
        /// 404, or an answer without a room or a positive delay.
        case notFound
        case failed(reason: String)
    }

    /// The fed_proxy envelope (MSC4512): the destination's status and JSON body (nil when it was not JSON).
    public struct FederationAnswer: Sendable, Equatable {
        public let status: Int
        public let content: JSONValue?
    }

    /// `is_joined` answers quickly; three calls and a relay must fit in the homeserver's 30 s for
    /// the whole proxied request (AS-MODE-NOTES §6 item 23).
    static let isJoinedTimeout: Duration = .seconds(5)
    static let delayedEventTimeout: Duration = .seconds(5)
    static let federationProxyTimeout: Duration = .seconds(15)
    static let maximumAnswerSize = 64 * 1024

    public let serverName: String
    let asToken: String
    let http: any HTTPClient
    let clock: any WallClock
    let clientServerAPI: ClientServerAPIResolver

    public init(settings: ApplicationServiceSettings, http: any HTTPClient, clock: any WallClock, clientServerAPI: ClientServerAPIResolver) {
        self.serverName = settings.serverName
        self.asToken = settings.asToken
        self.http = http
        self.clock = clock
        self.clientServerAPI = clientServerAPI
    }

    /// The homeserver's client-server API base URL (override, cache or discovery, §9.1).
    public func baseURL() -> Result<String, Failure> {
        switch clientServerAPI.resolve(serverName) {
        case .resolved(let baseURL): .success(baseURL)
        case .failed(let reason): .failure(Failure(reason: reason))
        }
    }

    /// `GET …/unstable/io.element.msc4502/rooms/{roomId}/is_joined?mxid=…|server_name=…`
    /// (AS-MODE-NOTES §2.9). Any non-2xx, transport error or non-JSON answer is a failure; a
    /// missing or non-boolean `joined` is false.
    public func isJoined(roomID: String, _ subject: Subject, baseURL: String) -> Result<Bool, Failure> {
        let query: String
        switch subject {
        case .user(let userID): query = "mxid=" + PercentEncoding.encode(userID)
        case .server(let name): query = "server_name=" + PercentEncoding.encode(name)
        }
        let url = Self.join(baseURL, "/_matrix/client/unstable/io.element.msc4502/rooms/\(Self.segment(roomID))/is_joined?\(query)")
        let response: OutboundResponse
        switch send("GET", url, timeout: Self.isJoinedTimeout) {
        case .success(let answer): response = answer
        case .failure(let failure): return .failure(failure)
        }
        guard (200...299).contains(response.status) else {
            return .failure(Failure(reason: "is_joined answered HTTP \(response.status)"))
        }
        guard let body = try? JSONParser.parse(response.body), case .object = body else {
            return .failure(Failure(reason: "is_joined answered something that is not a JSON object"))
        }
        return .success(body["joined"] == .bool(true))
    }

    /// `GET …/unstable/org.matrix.msc4140/delayed_events/{delayId}?user_id=<owner>`: owner only,
    /// pending only (Synapse 1.163). The delay is `delay_ms`, or the older MSC4140 `delay`.
    public func delayedEvent(delayID: String, userID: String, baseURL: String) -> DelayedEventLookup {
        let url = Self.join(
            baseURL, "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/\(DelayedEventClient.encodeSegment(delayID))?user_id=\(PercentEncoding.encode(userID))")
        let response: OutboundResponse
        switch send("GET", url, timeout: Self.delayedEventTimeout) {
        case .success(let answer): response = answer
        case .failure(let failure): return .failed(reason: failure.reason)
        }
        if response.status == 404 { return .notFound }
        guard response.status == 200 else {
            return .failed(reason: "delayed-event look-up answered HTTP \(response.status)")
        }
        guard let body = try? JSONParser.parse(response.body), case .object = body else {
            return .failed(reason: "delayed-event look-up answered something that is not a JSON object")
        }
        guard let roomID = body["room_id"]?.stringValue else { return .notFound }
        // Any integer size saturates (§13.5); the job's own range check has the last word.
        let delay = [body["delay_ms"], body["delay"]].lazy.compactMap { value -> Int64? in
            guard case .number(let literal)? = value, let number = Int64(saturatingDigits: Substring(literal)), number > 0 else { return nil }
            return number
        }.first
        guard let delay else { return .notFound }
        return .found(roomID: roomID, delay: delay)
    }

    /// `POST …/unstable/io.element.msc4512/appservice/fed_proxy`: the homeserver signs and sends
    /// `method path body` to `destination` over federation and wraps the answer (MSC4512).
    public func federationProxy(destination: String, method: HTTPMethod, path: String, body: JSONValue, baseURL: String) -> Result<FederationAnswer, Failure> {
        let request = JSONValue.object([
            JSONMember("destination", .string(destination)), JSONMember("method", .string(method.rawValue)),
            JSONMember("path", .string(path)), JSONMember("body", body),
        ])
        let url = Self.join(baseURL, "/_matrix/client/unstable/io.element.msc4512/appservice/fed_proxy")
        let response: OutboundResponse
        switch send("POST", url, body: request.serializedBytes(), timeout: Self.federationProxyTimeout) {
        case .success(let answer): response = answer
        case .failure(let failure): return .failure(failure)
        }
        guard (200...299).contains(response.status) else {
            return .failure(Failure(reason: "fed_proxy answered HTTP \(response.status)"))
        }
        guard let envelope = try? JSONParser.parse(response.body), case .number(let literal)? = envelope["status"],
            let status = Int(literal), (100...599).contains(status)
        else {
            return .failure(Failure(reason: "fed_proxy answered without an integer status"))
        }
        let content = envelope["content"]
        return .success(FederationAnswer(status: status, content: content == .null ? nil : content))
    }

    /// Restart or send of a delayed event as its owner (AS-MODE-NOTES §3.3): `Bearer <as_token>` and
    /// `?user_id=<owner>`, so the homeserver counts it against the user and the registration's
    /// `rate_limited: false` applies. Classified as §9.3, except that 409 (MSC4140 as merged: the
    /// event was finalised the other way) is its own outcome (B3).
    public func perform(_ action: DelayedEventClient.Action, delayID: String, userID: String, baseURL: String) -> DelayedEventOutcome {
        let url = DelayedEventClient.url(baseURL: baseURL, delayID: delayID, action: action) + "?user_id=" + PercentEncoding.encode(userID)
        let response: OutboundResponse
        switch send("POST", url, body: Array("{}".utf8), timeout: .seconds(5)) {
        case .success(let answer): response = answer
        case .failure(let failure): return .retry(after: nil, reason: failure.reason)
        }
        if response.status == 409 { return .conflict }
        return DelayedEventClient.classify(response, now: clock.now())
    }

    /// Internal, not private: further calls (the membership monitor's `joined_members`) live in extensions.
    func send(
        _ method: HTTPMethod, _ url: String, body: [UInt8] = [], timeout: Duration, maximumResponseSize: Int = maximumAnswerSize
    ) -> Result<OutboundResponse, Failure> {
        var headers: HTTPHeaders = [("Authorization", "Bearer \(asToken)"), ("Accept", "application/json")]
        if method == .post { headers.append(name: "Content-Type", value: "application/json") }
        let request = OutboundRequest(
            method: method, url: url, headers: headers, body: body, timeout: timeout, maximumRedirects: 0,
            maximumResponseSize: maximumResponseSize, addressPolicy: nil, serverName: serverName)
        do {
            return .success(try http.send(request))
        } catch {
            return .failure(Failure(reason: error.message))
        }
    }

    static func join(_ baseURL: String, _ path: String) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    /// A room ID as one path segment: `.`/`..` cannot become path steps.
    static func segment(_ value: String) -> String {
        DelayedEventClient.encodeSegment(value)
    }
}
