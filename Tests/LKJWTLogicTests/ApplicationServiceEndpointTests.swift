import LKJWTTestSupport
import Logging
import Synchronization
import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

/// AS-MODE.md B2: every step, error and text of the application-service endpoints, with a scripted
/// homeserver (client-server API at an override) and SFU behind the HTTP client.
struct ApplicationServiceEndpointTests {
    static let hsServerName = "hs.example.com"
    static let csBase = "https://cs.hs.example.com"
    static let asToken = "the-as-token"
    static let hsToken = "the-hs-token"
    static let liveKitURL = "wss://sfu.example.com"

    static let clientGetToken = "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/get_token"
    static let clientGetTokenV1 = "/_matrix/client/v1/rtc/livekit/get_token"
    static let delegation = "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave"
    static let delegationV1 = "/_matrix/client/v1/rtc/livekit/delegate_delayed_leave"
    static let federationGetToken = "/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token"
    static let federationGetTokenV1 = "/_matrix/federation/v1/rtc/livekit/get_token"

    /// What the homeserver and the SFU answer; tests change it before requests.
    final class Script: Sendable {
        /// Keyed by the `is_joined` query (`mxid=…` or `server_name=…`, encoded); absent: joined.
        let isJoined = Mutex<[String: OutboundResponse]>([:])
        let isJoinedDefault = Mutex(OutboundResponse.json(200, #"{"joined":true}"#))
        let delayedEvent = Mutex(OutboundResponse.json(200, #"{"delay_id":"syd_1","room_id":"!room:example.com","type":"org.matrix.msc3401.call.member","delay_ms":8000,"delayed_since_ts":1,"content":{}}"#))
        let federationProxy = Mutex(OutboundResponse.json(200, #"{"status":200,"content":{"jwt":"remote.jwt.token"}}"#))
        let sfuStatus = Mutex(200)
        let transportFailure = Mutex<String?>(nil)
    }

    final class RecordingDelegation: DelayedLeaveDelegation {
        let accepted = Mutex<[DelayedLeaveHandover]>([])
        let answer = Mutex<DelayedLeaveRefusal?>(nil)
        func clientServerAPIBaseURL(for serverName: String) -> String? { "unused" }
        func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal? {
            accepted.withLock { $0.append(handover) }
            return answer.withLock { $0 }
        }
        func apply(_ event: JobEvent, room: String, identity: String) {}
    }

    struct Harness {
        let script = Script()
        let http: ScriptedHTTPClient
        let service: AuthorizationService
        let delegation = RecordingDelegation()

        init(applicationService: Bool = true, overridden: Bool = true, delegating: Bool = true, canUpdateOwnMetadata: Bool = false) {
            let script = self.script
            let http = ScriptedHTTPClient { request throws(OutboundError) in
                if let failure = script.transportFailure.withLock({ $0 }), request.url.hasPrefix(ApplicationServiceEndpointTests.csBase) {
                    throw OutboundError(.transport, failure)
                }
                if request.url.contains("/twirp/") { return OutboundResponse(status: HTTPStatus(script.sfuStatus.withLock { $0 })) }
                if request.url.contains("/is_joined?") {
                    let query = String(request.url.split(separator: "?").last ?? "")
                    return script.isJoined.withLock { $0[query] } ?? script.isJoinedDefault.withLock { $0 }
                }
                if request.url.contains("/delayed_events/") { return script.delayedEvent.withLock { $0 } }
                if request.url.hasSuffix("/appservice/fed_proxy") { return script.federationProxy.withLock { $0 } }
                return .json(404, #"{"errcode":"M_NOT_FOUND"}"#)
            }
            self.http = http
            let configuration = Configuration(
                liveKitURL: ApplicationServiceEndpointTests.liveKitURL, apiKey: "devkey", apiSecret: "devsecret",
                accessPolicy: .servers(["full.example.org"]),
                csAPIURLOverrides: overridden ? CSAPIURLOverrides([ApplicationServiceEndpointTests.hsServerName: ApplicationServiceEndpointTests.csBase]) : CSAPIURLOverrides(),
                applicationService: applicationService
                    ? ApplicationServiceSettings(
                        asToken: ApplicationServiceEndpointTests.asToken, hsToken: ApplicationServiceEndpointTests.hsToken,
                        serverName: ApplicationServiceEndpointTests.hsServerName)
                    : nil,
                canUpdateOwnMetadata: canUpdateOwnMetadata)
            let clientServerAPI = ClientServerAPIResolver(overrides: configuration.csAPIURLOverrides, http: http, clock: FixedClock())
            let client = configuration.applicationService.map {
                ApplicationServiceClient(settings: $0, http: http, clock: FixedClock(), clientServerAPI: clientServerAPI)
            }
            service = AuthorizationService(
                configuration: configuration,
                dependencies: .init(
                    http: http, clock: FixedClock(), srv: TableSRVResolver([:]), random: FixedRandomSource(byte: 0),
                    delegation: delegating ? delegation : nil, addressRules: .unrestricted,
                    applicationService: client),
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        func send(
            _ method: String, _ path: String, _ body: String = "", authorization: String? = "Bearer \(ApplicationServiceEndpointTests.hsToken)",
            user: String? = "@alice:hs.example.com", origin: String? = nil, rawBody: Request.Body? = nil
        ) -> Response {
            var headers = HTTPHeaders()
            if let authorization { headers.append(name: "authorization", value: authorization) }
            if let user { headers.append(name: "x-matrix-user-identifier", value: user) }
            if let origin { headers.append(name: "x-matrix-origin", value: origin) }
            return service.respond(to: Request(method: HTTPMethod(rawValue: method), path: path, headers: headers, body: rawBody ?? .bytes(Array(body.utf8)), remoteAddress: "127.0.0.1"))
        }

        func post(_ path: String, _ body: String, user: String? = "@alice:hs.example.com", origin: String? = nil) -> Response {
            send("POST", path, body, user: user, origin: origin)
        }

        var homeserverCalls: [ScriptedHTTPClient.RecordedRequest] { http.requests.filter { $0.url.hasPrefix(ApplicationServiceEndpointTests.csBase) } }
        var isJoinedCalls: [String] { http.requests(containing: "/is_joined?").map(\.url) }
        var createRoomCalls: Int { http.requests(containing: "/twirp/livekit.RoomService/CreateRoom").count }
        var accepted: [DelayedLeaveHandover] { delegation.accepted.withLock { $0 } }
    }

    static func clientBody(serverName: String? = nil, url: String = liveKitURL, roomID: String = "!room:example.com", member: String = "member-1") -> String {
        let server = serverName.map { #""server_name":"\#($0)","# } ?? ""
        return #"{\#(server)"url":"\#(url)","room_id":"\#(roomID)","slot_id":"m.call#","member_id":"\#(member)"}"#
    }

    static func federationBody(userID: String = "@bob:origin.example.org", url: String = liveKitURL) -> String {
        #"{"user_id":"\#(userID)","url":"\#(url)","room_id":"!room:example.com","slot_id":"m.call#","member_id":"member-2"}"#
    }

    static func delegationBody(url: String = liveKitURL, delayID: String = "syd_1") -> String {
        #"{"url":"\#(url)","room_id":"!room:example.com","slot_id":"m.call#","member_id":"member-1","delay_id":"\#(delayID)"}"#
    }

    static func error(_ response: Response) -> String {
        guard let body = try? JSONParser.parse(response.body) else { return "not JSON: \(response.bodyText)" }
        return "\(response.status) \(body["errcode"]?.stringValue ?? "-") \(body["error"]?.stringValue ?? "-")"
    }

    static func claims(_ response: Response) throws -> JSONValue {
        let jwt = try #require(try JSONParser.parse(response.body)["jwt"]?.stringValue)
        return try JSONParser.parse(try #require(Base64.decodeURL(String(jwt.split(separator: ".")[1]))))
    }

    // MARK: Routing

    @Test(arguments: [clientGetToken, clientGetTokenV1, delegation, delegationV1, federationGetToken, federationGetTokenV1, "/_matrix/app/v1/ping"])
    func outsideApplicationServiceModeTheEndpointsAreUnknown(_ path: String) {
        let harness = Harness(applicationService: false)
        #expect(Self.error(harness.post(path, Self.clientBody())) == "404 M_UNRECOGNIZED Unrecognized request")
        #expect(harness.http.requests.isEmpty)
    }

    /// Contract §3.1 rev. 2: `…/_matrix/…/get_token` ends with `/get_token` but is never the standalone endpoint.
    @Test(arguments: [true, false])
    func matrixPathsNeverReachTheStandaloneEndpoints(_ applicationService: Bool) {
        let harness = Harness(applicationService: applicationService)
        for path in ["/_matrix/client/r0/get_token", "/_matrix/x/sfu/get", "/_matrix/client/v3/delegate_delayed_leave", "/_matrix/healthz", "/_matrix/sfu_webhook"] {
            #expect(Self.error(harness.post(path, "{}")) == "404 M_UNRECOGNIZED Unrecognized request")
        }
        #expect(harness.http.requests.isEmpty)
    }

    @Test(arguments: [
        clientGetToken, clientGetTokenV1, "/livekit/jwt" + clientGetToken, "/livekit/jwt" + clientGetTokenV1,
    ])
    func clientTokenIsServedOnBothVersionsAndUnderAnyMount(_ path: String) throws {
        let harness = Harness()
        let response = harness.post(path, Self.clientBody())
        #expect(response.status == 200)
        #expect(try JSONParser.parse(response.body)["jwt"] != nil)
    }

    @Test(arguments: [
        "/_matrix/client/v3/rtc/livekit/get_token", "/_matrix/client/unstable/other.ns/rtc/livekit/get_token", "/_matrix/client/v1/rtc/livekit/get_token/",
        "/_matrix/client/v1/rtc/livekit/sfu/get", "/_matrix/app/v1/transactions/", "/_matrix/app/v1/transactions/a/b", "/_matrix/app/v2/ping",
    ])
    func otherMatrixPathsAreUnknown(_ path: String) {
        let harness = Harness()
        #expect(Self.error(harness.send("PUT", path, "{}")) == "404 M_UNRECOGNIZED Unrecognized request")
    }

    @Test(arguments: ["GET", "POST", "PUT", "DELETE"])
    func pingAnswersAnyMethodOnceAuthenticated(_ method: String) {
        let harness = Harness()
        let response = harness.send(method, "/_matrix/app/v1/ping", #"{"transaction_id":"t"}"#)
        #expect(response.status == 200)
        #expect(response.bodyText == "{}\n")
        #expect(response.headers["Content-Type"] == "application/json")
        #expect(response.headers["Access-Control-Allow-Origin"] == nil)
        #expect(Self.error(harness.send(method, "/_matrix/app/v1/ping", authorization: nil)) == "401 M_UNAUTHORIZED Missing homeserver access token")
        #expect(Self.error(harness.send(method, "/_matrix/app/v1/ping", authorization: "Bearer nope")) == "403 M_FORBIDDEN Unrecognised homeserver access token")
    }

    @Test func transactionsAreAcceptedAndIgnored() {
        let harness = Harness()
        let path = "/_matrix/app/v1/transactions/txn-1"
        let accepted = harness.send("PUT", path, #"{"events":[{"type":"m.room.message"}]}"#)
        #expect(accepted.status == 200)
        #expect(accepted.bodyText == "{}\n")
        #expect(harness.send("PUT", path, rawBody: .tooLarge).status == 200)
        let wrongMethod = harness.send("POST", path, "{}")
        #expect(Self.error(wrongMethod) == "405 M_UNRECOGNIZED Method not allowed")
        #expect(wrongMethod.headers["Allow"] == "PUT")
        #expect(Self.error(harness.send("PUT", path, "{}", authorization: nil)) == "401 M_UNAUTHORIZED Missing homeserver access token")
        #expect(harness.http.requests.isEmpty)
    }

    // MARK: Method gate and homeserver authentication (B2.1)

    @Test(arguments: [clientGetToken, delegation, federationGetToken])
    func optionsAndWrongMethodsComeBeforeAuthentication(_ path: String) {
        let harness = Harness()
        let options = harness.send("OPTIONS", path, authorization: nil)
        #expect(options.status == 200)
        #expect(options.body.isEmpty)
        let wrong = harness.send("GET", path, authorization: nil)
        #expect(Self.error(wrong) == "405 M_UNRECOGNIZED Method not allowed")
        #expect(wrong.headers["Allow"] == "POST, OPTIONS")
        #expect(harness.send("HEAD", path, authorization: nil).body.isEmpty)
        #expect(harness.http.requests.isEmpty)
    }

    @Test func clientEndpointsCarryCORSAndTheFederationEndpointDoesNot() {
        let harness = Harness()
        for path in [Self.clientGetToken, Self.delegation] {
            for response in [harness.send("OPTIONS", path), harness.send("GET", path), harness.post(path, "x")] {
                #expect(response.headers["Access-Control-Allow-Origin"] == "*")
                #expect(response.headers["Content-Type"] == "application/json")
            }
        }
        for response in [harness.send("OPTIONS", Self.federationGetToken), harness.send("GET", Self.federationGetToken), harness.post(Self.federationGetToken, "x")] {
            #expect(response.headers["Access-Control-Allow-Origin"] == nil)
            #expect(response.headers["Content-Type"] == "application/json")
        }
    }

    @Test(arguments: [
        (nil, "401 M_UNAUTHORIZED Missing homeserver access token"),
        ("", "401 M_UNAUTHORIZED Missing homeserver access token"),
        ("Bearer", "401 M_UNAUTHORIZED Missing homeserver access token"),
        ("Bearer ", "401 M_UNAUTHORIZED Missing homeserver access token"),
        ("Basic dXNlcjpwYXNz", "401 M_UNAUTHORIZED Missing homeserver access token"),
        ("Bearer the-hs-token ", "403 M_FORBIDDEN Unrecognised homeserver access token"),
        ("Bearer the-hs-toke", "403 M_FORBIDDEN Unrecognised homeserver access token"),
        ("Bearer the-as-token", "403 M_FORBIDDEN Unrecognised homeserver access token"),
        ("Bearer  the-hs-token", "403 M_FORBIDDEN Unrecognised homeserver access token"),
    ] as [(String?, String)])
    func homeserverTokenIsCheckedBeforeTheBody(_ authorization: String?, _ expected: String) {
        let harness = Harness()
        for path in [Self.clientGetToken, Self.delegation, Self.federationGetToken] {
            // The body is not even looked at: not JSON, too large, or never arrived.
            #expect(Self.error(harness.send("POST", path, "not json", authorization: authorization)) == expected)
            #expect(Self.error(harness.send("POST", path, authorization: authorization, rawBody: .tooLarge)) == expected)
            #expect(Self.error(harness.send("POST", path, authorization: authorization, rawBody: .timedOut)) == expected)
        }
        #expect(harness.http.requests.isEmpty)
    }

    @Test func theSchemeIsCaseInsensitive() {
        let harness = Harness()
        #expect(harness.send("POST", Self.clientGetToken, Self.clientBody(), authorization: "bearer the-hs-token").status == 200)
        #expect(harness.send("POST", Self.clientGetToken, Self.clientBody(), authorization: "BEARER the-hs-token").status == 200)
    }

    // MARK: Bodies (B2.2)

    @Test(arguments: [clientGetToken, delegation, federationGetToken])
    func bodyProblemsAfterAuthentication(_ path: String) {
        let harness = Harness()
        #expect(Self.error(harness.send("POST", path, rawBody: .tooLarge)) == "413 M_TOO_LARGE Request body too large")
        #expect(Self.error(harness.send("POST", path, rawBody: .timedOut)) == "408 M_UNKNOWN Request body timed out")
        for body in ["", "not json", "[]", #""x""#, "{} {}", #"{"room_id":1}"#, #"{"ROOM_ID":"x"}"#] {
            #expect(Self.error(harness.post(path, body)) == "400 M_NOT_JSON Error reading request")
        }
        #expect(harness.http.requests.isEmpty)
    }

    /// B2.2: MSC4195's flat shape exactly; the older `member` object and `delay_timeout` are unknown members.
    @Test func olderShapesAreNotJSON() {
        let harness = Harness()
        let member = #"{"url":"\#(Self.liveKitURL)","room_id":"!r:x","slot_id":"m.call#","member":{"id":"m","claimed_device_id":"D"}}"#
        #expect(Self.error(harness.post(Self.clientGetToken, member)) == "400 M_NOT_JSON Error reading request")
        let withTimeout = #"{"url":"\#(Self.liveKitURL)","room_id":"!r:x","slot_id":"m.call#","member_id":"m","delay_id":"d","delay_timeout":8000}"#
        #expect(Self.error(harness.post(Self.delegation, withTimeout)) == "400 M_NOT_JSON Error reading request")
        // `user_id` belongs to the federation body only, `server_name` to the client's.
        #expect(Self.error(harness.post(Self.clientGetToken, #"{"user_id":"@a:b"}"#)) == "400 M_NOT_JSON Error reading request")
        #expect(Self.error(harness.post(Self.federationGetToken, #"{"server_name":"b"}"#)) == "400 M_NOT_JSON Error reading request")
    }

    static let clientMissing = "400 M_BAD_JSON The request body is missing `url`, `room_id`, `slot_id` or `member_id`"
    static let federationMissing = "400 M_BAD_JSON The request body is missing `user_id`, `url`, `room_id`, `slot_id` or `member_id`"
    static let delegationMissing = "400 M_BAD_JSON The request body is missing `url`, `room_id`, `slot_id`, `member_id` or `delay_id`"

    @Test(arguments: ["url", "room_id", "slot_id", "member_id"])
    func clientRequiredMembers(_ name: String) throws {
        let harness = Harness()
        let object = try JSONParser.parse(Array(Self.clientBody().utf8))
        for empty in [JSONValue.null, .string("")] {
            #expect(Self.error(harness.post(Self.clientGetToken, Self.setting(object, name, empty).serialized())) == Self.clientMissing)
        }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.removing(object, name).serialized())) == Self.clientMissing)
        #expect(harness.http.requests.isEmpty)
    }

    @Test(arguments: ["user_id", "url", "room_id", "slot_id", "member_id"])
    func federationRequiredMembers(_ name: String) throws {
        let harness = Harness()
        let object = try JSONParser.parse(Array(Self.federationBody().utf8))
        #expect(Self.error(harness.post(Self.federationGetToken, Self.setting(object, name, .string("")).serialized(), origin: "origin.example.org")) == Self.federationMissing)
        #expect(Self.error(harness.post(Self.federationGetToken, Self.removing(object, name).serialized(), origin: "origin.example.org")) == Self.federationMissing)
        #expect(harness.http.requests.isEmpty)
    }

    @Test(arguments: ["url", "room_id", "slot_id", "member_id", "delay_id"])
    func delegationRequiredMembers(_ name: String) throws {
        let harness = Harness()
        let object = try JSONParser.parse(Array(Self.delegationBody().utf8))
        #expect(Self.error(harness.post(Self.delegation, Self.setting(object, name, .null).serialized())) == Self.delegationMissing)
        #expect(Self.error(harness.post(Self.delegation, Self.removing(object, name).serialized())) == Self.delegationMissing)
        #expect(harness.http.requests.isEmpty)
    }

    /// Missing members are reported before a missing identity header.
    @Test func validationComesBeforeTheIdentityHeaders() {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.clientGetToken, "{}", user: nil)) == Self.clientMissing)
        #expect(Self.error(harness.post(Self.federationGetToken, "null")) == Self.federationMissing)
        #expect(Self.error(harness.post(Self.delegation, "{}", user: nil)) == Self.delegationMissing)
    }

    @Test func lengthsAreLimited() throws {
        let harness = Harness()
        let long = String(repeating: "a", count: 256)
        let fits = String(repeating: "a", count: 255)
        let tooLong255 = "400 M_BAD_JSON The request body has a value longer than 255 bytes"
        let client = try JSONParser.parse(Array(Self.clientBody().utf8))
        for name in ["room_id", "slot_id", "member_id", "server_name"] {
            #expect(Self.error(harness.post(Self.clientGetToken, Self.setting(client, name, .string(long)).serialized())) == tooLong255)
        }
        let federation = try JSONParser.parse(Array(Self.federationBody().utf8))
        #expect(Self.error(harness.post(Self.federationGetToken, Self.setting(federation, "user_id", .string("@" + long)).serialized(), origin: "o")) == tooLong255)
        let delegation = try JSONParser.parse(Array(Self.delegationBody().utf8))
        #expect(Self.error(harness.post(Self.delegation, Self.setting(delegation, "delay_id", .string(long)).serialized())) == tooLong255)
        #expect(harness.http.requests.isEmpty)
        // `url` may be up to 2 048 bytes; past that its own text.
        let url2049 = "wss://" + String(repeating: "u", count: 2043)
        #expect(Self.error(harness.post(Self.clientGetToken, Self.setting(client, "url", .string(url2049)).serialized())) == "400 M_BAD_JSON The request body has a value longer than 2048 bytes")
        #expect(Self.error(harness.post(Self.clientGetToken, Self.setting(client, "url", .string(String(url2049.dropLast()))).serialized())).hasPrefix("400 M_INVALID_PARAM"))
        #expect(harness.post(Self.clientGetToken, Self.setting(client, "room_id", .string(fits)).serialized()).status == 200)
    }

    // MARK: Client get_token, local (AS-MODE-NOTES §2.4)

    @Test func joinedLocalUserGetsATokenThatPublishes() throws {
        let harness = Harness()
        let response = harness.post(Self.clientGetToken, Self.clientBody(roomID: "!room:example.com", member: "member-1"), user: "@alice:example.com")
        #expect(response.status == 200)
        #expect(response.headers["Access-Control-Allow-Origin"] == "*")
        #expect(response.bodyText.hasSuffix("}\n"))
        let document = try JSONParser.parse(response.body)
        guard case .object(let members) = document else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["jwt"])
        let claims = try Self.claims(response)
        // AS-MODE-NOTES §2.3 vectors: H(["@alice:example.com","member-1"]) and the alias of CONTRACT V3.
        #expect(claims["sub"] == .string("oCgvTi/lLHzLXI80TAXtX5/vVE4C03cmzYH3iyMEmuY"))
        #expect(claims["identity"] == .string("oCgvTi/lLHzLXI80TAXtX5/vVE4C03cmzYH3iyMEmuY"))
        #expect(claims["video"]?["room"] == .string("hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"))
        #expect(claims["video"]?["canPublish"] == .bool(true))
        #expect(claims["video"]?["canUpdateOwnMetadata"] == .bool(false))
        #expect(claims["video"]?["roomCreate"] == nil)
        #expect(harness.createRoomCalls == 1)
        // Exactly one homeserver call: is_joined for the user, as the application service.
        let calls = harness.homeserverCalls
        #expect(calls.map(\.url) == ["https://cs.hs.example.com/_matrix/client/unstable/io.element.msc4502/rooms/%21room%3Aexample.com/is_joined?mxid=%40alice%3Aexample.com"])
        #expect(calls.first?.method == "GET")
        #expect(calls.first?.headers["authorization"] == "Bearer the-as-token")
        #expect(calls.first?.maximumRedirects == 0)
        #expect(calls.first?.addressPolicy == nil)
    }

    @Test func identityVectorOfMSC4195() {
        #expect(HashedName.applicationServiceIdentity(userID: "@alice:example.com", memberID: "memberABC") == "M3VnsLXrkbxIDINXO64u8PZzFyD9ZYFiQULR2dshWYs")
    }

    @Test func metadataSwitchAppliesToApplicationServiceTokens() throws {
        let harness = Harness(canUpdateOwnMetadata: true)
        #expect(try Self.claims(harness.post(Self.clientGetToken, Self.clientBody()))["video"]?["canUpdateOwnMetadata"] == .bool(true))
    }

    @Test func ownServerNameIsLocal() throws {
        let harness = Harness()
        let response = harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.hsServerName))
        #expect(response.status == 200)
        #expect(harness.createRoomCalls == 1)
        #expect(harness.http.requests(containing: "fed_proxy").isEmpty)
    }

    @Test func missingUserHeaderIsUnauthorized() {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(), user: nil)) == "401 M_UNAUTHORIZED Missing request authorization")
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(), user: "")) == "401 M_UNAUTHORIZED Missing request authorization")
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(), user: "@älice:hs.example.com")) == "401 M_UNAUTHORIZED Missing request authorization")
        #expect(harness.http.requests.isEmpty)
    }

    @Test func wrongURLIsRefusedBeforeAnyHomeserverCall() {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(url: "wss://other.example.com"))) == "400 M_INVALID_PARAM The request `url` does not match this service's LiveKit URL")
        // Checked before the user identifier (upstream's order).
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(url: "wss://other.example.com"), user: "alice")) == "400 M_INVALID_PARAM The request `url` does not match this service's LiveKit URL")
        #expect(harness.http.requests.isEmpty)
    }

    @Test(arguments: ["alice", "alice:hs.example.com", "@alice", "@:hs.example.com", "@alice:", "@"])
    func malformedUserIdentifier(_ user: String) {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(), user: user)) == "400 M_INVALID_PARAM Malformed user identifier")
        #expect(harness.http.requests.isEmpty)
    }

    @Test func unresolvableHomeserver() {
        // No override: discovery of hs.example.com's well-known answers 404.
        let harness = Harness(overridden: false)
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "400 M_BAD_JSON Unable to resolve client-server API")
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "400 M_BAD_JSON Unable to resolve client-server API")
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: "origin.example.org")) == "400 M_BAD_JSON Unable to resolve client-server API")
        // Discovery asked only the configured homeserver.
        #expect(Set(harness.http.requests.map(\.url)) == ["https://hs.example.com/.well-known/matrix/client"])
    }

    @Test func userNotInTheRoomIsForbidden() {
        let harness = Harness()
        harness.script.isJoinedDefault.withLock { $0 = .json(200, #"{"joined":false}"#) }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "403 M_FORBIDDEN The requesting user is not a member of the room")
        harness.script.isJoinedDefault.withLock { $0 = .json(200, "{}") }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "403 M_FORBIDDEN The requesting user is not a member of the room")
        harness.script.isJoinedDefault.withLock { $0 = .json(200, #"{"joined":"true"}"#) }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "403 M_FORBIDDEN The requesting user is not a member of the room")
        #expect(harness.createRoomCalls == 0)
    }

    @Test(arguments: [
        OutboundResponse.json(500, "{}"), .json(403, #"{"errcode":"M_FORBIDDEN"}"#), .json(302, ""), .json(200, "not json"), .json(200, "[true]"),
    ])
    func membershipThatCannotBeVerified(_ answer: OutboundResponse) {
        let harness = Harness()
        harness.script.isJoinedDefault.withLock { $0 = answer }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "502 M_UNKNOWN Unable to verify room membership")
        #expect(harness.createRoomCalls == 0)
    }

    @Test func homeserverUnreachableIsAnUnverifiableMembership() {
        let harness = Harness()
        harness.script.transportFailure.withLock { $0 = "connection refused" }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "502 M_UNKNOWN Unable to verify room membership")
    }

    @Test func roomCreationFailure() {
        let harness = Harness()
        harness.script.sfuStatus.withLock { $0 = 503 }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody())) == "500 M_UNKNOWN Unable to create room on SFU")
    }

    // MARK: Client get_token, remote (AS-MODE-NOTES §2.4 step 7R, §2.10)

    static let remote = "sfu-home.example.net"

    @Test func remoteRequestIsRelayedThroughTheHomeserver() throws {
        let harness = Harness()
        // The URL is the remote deployment's business.
        let response = harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote, url: "wss://remote-sfu.example.net"))
        #expect(response.status == 200)
        #expect(response.bodyText == #"{"jwt":"remote.jwt.token"}"# + "\n")
        #expect(harness.createRoomCalls == 0)
        #expect(harness.isJoinedCalls == [
            "https://cs.hs.example.com/_matrix/client/unstable/io.element.msc4502/rooms/%21room%3Aexample.com/is_joined?mxid=%40alice%3Ahs.example.com",
            "https://cs.hs.example.com/_matrix/client/unstable/io.element.msc4502/rooms/%21room%3Aexample.com/is_joined?server_name=sfu-home.example.net",
        ])
        let relay = try #require(harness.http.requests(containing: "fed_proxy").first)
        #expect(relay.url == "https://cs.hs.example.com/_matrix/client/unstable/io.element.msc4512/appservice/fed_proxy")
        #expect(relay.method == "POST")
        #expect(relay.headers["authorization"] == "Bearer the-as-token")
        #expect(relay.headers["content-type"] == "application/json")
        #expect(relay.maximumRedirects == 0)
        #expect(String(decoding: relay.body, as: UTF8.self) == #"{"destination":"sfu-home.example.net","method":"POST","path":"/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token","body":{"user_id":"@alice:hs.example.com","url":"wss://remote-sfu.example.net","room_id":"!room:example.com","slot_id":"m.call#","member_id":"member-1"}}"#)
    }

    @Test func remoteUserMembershipIsCheckedFirst() {
        let harness = Harness()
        harness.script.isJoined.withLock { $0["mxid=%40alice%3Ahs.example.com"] = .json(200, #"{"joined":false}"#) }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote))) == "403 M_FORBIDDEN The requesting user is not a member of the room")
        #expect(harness.http.requests(containing: "fed_proxy").isEmpty)
    }

    @Test func targetServerMustBeInTheRoom() {
        let harness = Harness()
        harness.script.isJoined.withLock { $0["server_name=sfu-home.example.net"] = .json(200, #"{"joined":false}"#) }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote))) == "403 M_FORBIDDEN The target server is not joined to the room")
        harness.script.isJoined.withLock { $0["server_name=sfu-home.example.net"] = .json(500, "{}") }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote))) == "502 M_UNKNOWN Unable to verify room membership")
        #expect(harness.http.requests(containing: "fed_proxy").isEmpty)
    }

    @Test(arguments: [
        (OutboundResponse.json(200, #"{"status":403,"content":{"errcode":"M_FORBIDDEN","error":"x"}}"#), "403 M_FORBIDDEN The requesting user is not a member of the room on the destination homeserver"),
        (.json(200, #"{"status":400,"content":{"errcode":"M_INVALID_PARAM","error":"x"}}"#), "400 M_INVALID_PARAM The destination homeserver rejected the specified `url`"),
        (.json(200, #"{"status":403,"content":{"errcode":"M_UNKNOWN_TOKEN"}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":400,"content":{"errcode":"M_BAD_JSON"}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":401,"content":{"errcode":"M_UNAUTHORIZED"}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":500,"content":null}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":404,"content":{"errcode":"M_UNRECOGNIZED"}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":200,"content":null}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":200,"content":{"jwt":5}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":200}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"content":{"jwt":"x"}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, #"{"status":"200","content":{"jwt":"x"}}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(200, "not json"), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(502, #"{"errcode":"IO.ELEMENT.MSC4512.M_FEDPROXY_CONNECTION_FAILED"}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
        (.json(403, #"{"errcode":"IO.ELEMENT.MSC4512.M_FEDPROXY_DESTINATION_DENIED"}"#), "502 M_UNKNOWN Unable to reach the specified homeserver"),
    ])
    func relayAnswersAreMapped(_ answer: OutboundResponse, _ expected: String) {
        let harness = Harness()
        harness.script.federationProxy.withLock { $0 = answer }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote))) == expected)
    }

    @Test func anyDestinationSuccessStatusCarriesTheToken() {
        let harness = Harness()
        harness.script.federationProxy.withLock { $0 = .json(200, #"{"status":201,"content":{"jwt":"j","extra":1}}"#) }
        #expect(harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote)).bodyText == #"{"jwt":"j"}"# + "\n")
    }

    @Test func relayTransportFailure() {
        let harness = Harness()
        harness.script.federationProxy.withLock { $0 = .json(200, #"{"joined":true}"#) }
        #expect(Self.error(harness.post(Self.clientGetToken, Self.clientBody(serverName: Self.remote))) == "502 M_UNKNOWN Unable to reach the specified homeserver")
    }

    // MARK: Federation get_token (AS-MODE-NOTES §2.5)

    @Test func joinedFederatedUserGetsATokenWithoutPublishing() throws {
        let harness = Harness()
        let response = harness.post(Self.federationGetToken, Self.federationBody(), user: nil, origin: "origin.example.org")
        #expect(response.status == 200)
        #expect(response.headers["Access-Control-Allow-Origin"] == nil)
        let claims = try Self.claims(response)
        #expect(claims["sub"] == .string("nZezWY5ko3yXH/sM+rZ/wPDG75K87YdTnqe9MnSGdww"))
        #expect(claims["video"]?["room"] == .string("hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"))
        #expect(claims["video"]?["canPublish"] == .bool(false))
        #expect(claims["video"]?["canSubscribe"] == .bool(true))
        #expect(harness.createRoomCalls == 1)
        #expect(harness.isJoinedCalls == [
            "https://cs.hs.example.com/_matrix/client/unstable/io.element.msc4502/rooms/%21room%3Aexample.com/is_joined?server_name=hs.example.com",
            "https://cs.hs.example.com/_matrix/client/unstable/io.element.msc4502/rooms/%21room%3Aexample.com/is_joined?mxid=%40bob%3Aorigin.example.org",
        ])
        #expect(harness.homeserverCalls.allSatisfy { $0.headers["authorization"] == "Bearer the-as-token" })
    }

    @Test func v1FederationPathIsServed() {
        let harness = Harness()
        #expect(harness.post(Self.federationGetTokenV1, Self.federationBody(), origin: "origin.example.org").status == 200)
    }

    @Test func federationOriginChecks() {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: nil)) == "401 M_UNAUTHORIZED Missing request origin")
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(userID: "bob"), origin: "origin.example.org")) == "400 M_INVALID_PARAM Malformed user identifier")
        for origin in ["other.example.org", "origin.example.org:8448", "ORIGIN.example.org"] {
            #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: origin)) == "403 M_FORBIDDEN The user_id does not belong to the origin server")
        }
        #expect(harness.http.requests.isEmpty)
        #expect(harness.post(Self.federationGetToken, Self.federationBody(userID: "@bob:origin.example.org:8448"), origin: "origin.example.org:8448").status == 200)
    }

    @Test func federationMembershipChecks() {
        let harness = Harness()
        harness.script.isJoined.withLock { $0["server_name=hs.example.com"] = .json(200, #"{"joined":false}"#) }
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: "origin.example.org")) == "403 M_FORBIDDEN This server is not joined to the room")
        #expect(harness.isJoinedCalls.count == 1)
        harness.script.isJoined.withLock { $0 = ["mxid=%40bob%3Aorigin.example.org": .json(200, #"{"joined":false}"#)] }
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: "origin.example.org")) == "403 M_FORBIDDEN The requesting user is not a member of the room")
        harness.script.isJoined.withLock { $0 = ["mxid=%40bob%3Aorigin.example.org": .json(503, "{}")] }
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: "origin.example.org")) == "502 M_UNKNOWN Unable to verify room membership")
        harness.script.isJoined.withLock { $0 = ["server_name=hs.example.com": .json(503, "{}")] }
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: "origin.example.org")) == "502 M_UNKNOWN Unable to verify room membership")
        #expect(harness.createRoomCalls == 0)
    }

    /// On this endpoint the URL is checked last (upstream's order).
    @Test func federationURLIsCheckedAfterMembership() {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(url: "wss://x"), origin: "origin.example.org")) == "400 M_INVALID_PARAM The request `url` does not match this service's LiveKit URL")
        #expect(harness.isJoinedCalls.count == 2)
        #expect(harness.createRoomCalls == 0)
    }

    @Test func federationRoomCreationFailure() {
        let harness = Harness()
        harness.script.sfuStatus.withLock { $0 = 500 }
        #expect(Self.error(harness.post(Self.federationGetToken, Self.federationBody(), origin: "origin.example.org")) == "500 M_UNKNOWN Unable to create room on SFU")
    }

    // MARK: Client delegate_delayed_leave (AS-MODE-NOTES §2.6, B3)

    @Test(arguments: [delegation, delegationV1])
    func delegationLooksTheDelayUpAndStoresAJobActingAsTheOwner(_ path: String) throws {
        let harness = Harness()
        let response = harness.post(path, Self.delegationBody(delayID: "syd/1"), user: "@alice:example.com")
        #expect(response.status == 200)
        #expect(response.bodyText == "{}\n")
        let lookup = try #require(harness.homeserverCalls.first)
        #expect(harness.homeserverCalls.count == 1)
        #expect(lookup.method == "GET")
        #expect(lookup.url == "https://cs.hs.example.com/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd%2F1?user_id=%40alice%3Aexample.com")
        #expect(lookup.headers["authorization"] == "Bearer the-as-token")
        #expect(lookup.maximumRedirects == 0)
        #expect(harness.accepted == [DelayedLeaveHandover(
            serverName: "hs.example.com", ownerUserID: "@alice:example.com", actsAsOwner: true, quota: JobQuota(perUser: 32, perServer: nil),
            delayID: "syd/1", delayTimeout: 8000, roomAlias: "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY",
            identity: "oCgvTi/lLHzLXI80TAXtX5/vVE4C03cmzYH3iyMEmuY")])
        #expect(harness.createRoomCalls == 0)
        #expect(harness.isJoinedCalls.isEmpty)
    }

    @Test(arguments: [
        (#"{"room_id":"!room:example.com","delay":5000}"#, Int64(5000)),
        (#"{"room_id":"!room:example.com","delay_ms":0,"delay":7000}"#, Int64(7000)),
        (#"{"room_id":"!room:example.com","delay_ms":99999999999999999999}"#, Int64.max),
    ])
    func delayFromOlderOrHugeAnswers(_ body: String, _ delay: Int64) {
        let harness = Harness()
        harness.script.delayedEvent.withLock { $0 = .json(200, body) }
        _ = harness.post(Self.delegation, Self.delegationBody())
        #expect(harness.accepted.map(\.delayTimeout) == [delay])
    }

    @Test(arguments: [
        OutboundResponse.json(404, #"{"errcode":"M_NOT_FOUND","error":"Delayed event not found"}"#),
        .json(200, #"{"room_id":"!other:example.com","delay_ms":8000}"#),
        .json(200, #"{"room_id":"!room:example.com","delay_ms":0}"#),
        .json(200, #"{"room_id":"!room:example.com","delay_ms":-5}"#),
        .json(200, #"{"room_id":"!room:example.com","delay_ms":8000.5}"#),
        .json(200, #"{"room_id":"!room:example.com"}"#),
        .json(200, #"{"delay_ms":8000}"#),
    ])
    func unknownDelay(_ answer: OutboundResponse) {
        let harness = Harness()
        harness.script.delayedEvent.withLock { $0 = answer }
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "400 M_INVALID_PARAM Unknown `delay_id`")
        #expect(harness.accepted.isEmpty)
    }

    @Test(arguments: [
        OutboundResponse.json(500, "{}"), .json(429, #"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1000}"#), .json(403, "{}"),
        .json(200, "not json"), .json(204, ""),
    ])
    func delayLookupFailure(_ answer: OutboundResponse) {
        let harness = Harness()
        harness.script.delayedEvent.withLock { $0 = answer }
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "503 M_UNKNOWN Unable to look up the delayed event")
        #expect(harness.accepted.isEmpty)
        // A single attempt: no retries at request time.
        #expect(harness.homeserverCalls.count == 1)
    }

    @Test func delayLookupTransportFailure() {
        let harness = Harness()
        harness.script.transportFailure.withLock { $0 = "timed out" }
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "503 M_UNKNOWN Unable to look up the delayed event")
    }

    @Test func delegationChecksBeforeTheLookUp() {
        let harness = Harness()
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody(), user: nil)) == "401 M_UNAUTHORIZED Missing request authorization")
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody(url: "wss://x"))) == "400 M_INVALID_PARAM The request `url` does not match this service's LiveKit URL")
        #expect(harness.http.requests.isEmpty)
    }

    @Test func jobErrorsReachTheClient() {
        let harness = Harness()
        harness.delegation.answer.withLock { $0 = .shuttingDown }
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "503 M_UNKNOWN Service is shutting down")
        harness.delegation.answer.withLock { $0 = .tooManyDelayedLeaveEvents }
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "429 M_LIMIT_EXCEEDED Too many delayed leave events")
    }

    @Test func withoutAJobStoreDelegationIsUnavailable() {
        let harness = Harness(delegating: false)
        #expect(Self.error(harness.post(Self.delegation, Self.delegationBody())) == "503 M_UNKNOWN Delegation of delayed events is not available")
    }

    // MARK: Helpers

    static func setting(_ object: JSONValue, _ name: String, _ value: JSONValue) -> JSONValue {
        guard case .object(let members) = object else { return object }
        return .object(members.map { $0.key == name ? JSONMember(name, value) : $0 } + (members.contains { $0.key == name } ? [] : [JSONMember(name, value)]))
    }

    static func removing(_ object: JSONValue, _ name: String) -> JSONValue {
        guard case .object(let members) = object else { return object }
        return .object(members.filter { $0.key != name })
    }
}
