import LKJWTTestSupport
import Logging
import Synchronization
import Testing

@testable import LKJWTLogic

/// Drives the whole HTTP surface without sockets: a scripted homeserver and SFU behind the HTTP client.
struct AuthorizationServiceTests {
    static let fullServer = "full.example.com:8448"
    static let restrictedServer = "other.example.org:8448"

    final class RecordingDelegation: DelayedLeaveDelegation {
        let resolvable: Bool
        let accepted = Mutex<[DelayedLeaveHandover]>([])
        init(resolvable: Bool) { self.resolvable = resolvable }
        func clientServerAPIBaseURL(for serverName: String) -> String? { resolvable ? "https://cs.example.com" : nil }
        func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal? {
            accepted.withLock { $0.append(handover) }
            return nil
        }
        let applied = Mutex<[String]>([])
        func apply(_ event: JobEvent, room: String, identity: String) {
            applied.withLock { $0.append("\(event.rawValue) \(room) \(identity)") }
        }
    }

    struct Harness {
        let http: ScriptedHTTPClient
        let service: AuthorizationService

        init(sfuStatus: Int = 200, delegation: (any DelayedLeaveDelegation)? = nil) {
            http = ScriptedHTTPClient { request throws(OutboundError) in
                if request.url.contains("/twirp/") {
                    return OutboundResponse(status: HTTPStatus(sfuStatus))
                }
                // The homeserver: token "good-<user>" belongs to that user on the Host asked.
                let host = request.headers["Host"] ?? ""
                guard let token = request.url.split(separator: "access_token=").last, token.hasPrefix("good-") else {
                    return .json(401, #"{"errcode":"M_UNKNOWN_TOKEN"}"#)
                }
                return .json(200, #"{"sub":"@\#(token.dropFirst(5)):\#(host)"}"#)
            }
            let configuration = Configuration(
                liveKitURL: "wss://sfu.example.com", apiKey: "devkey", apiSecret: "devsecret",
                accessPolicy: .servers([AuthorizationServiceTests.fullServer]))
            service = AuthorizationService(
                configuration: configuration,
                dependencies: .init(
                    http: http, clock: FixedClock(), srv: TableSRVResolver([:]), random: FixedRandomSource(byte: 0), delegation: delegation,
                    addressRules: .unrestricted),
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        func post(_ path: String, _ body: String) -> Response {
            service.respond(to: Request(method: "POST", path: path, body: .bytes(Array(body.utf8)), remoteAddress: "127.0.0.1"))
        }

        var createRoomCalls: Int { http.requests(containing: "/twirp/livekit.RoomService/CreateRoom").count }
        var userinfoCalls: Int { http.requests(containing: "/openid/userinfo").count }
    }

    static func tokenBody(
        roomID: String = "!room:example.com", slotID: String = "m.call#", server: String = fullServer, accessToken: String = "good-alice",
        user: String? = nil, device: String = "DEVICE", member: String = "member-1", extra: String = ""
    ) -> String {
        let claimed = user ?? "@alice:\(server)"
        return #"{"room_id":"\#(roomID)","slot_id":"\#(slotID)","openid_token":{"access_token":"\#(accessToken)","token_type":"Bearer","matrix_server_name":"\#(server)","expires_in":3600},"member":{"id":"\#(member)","claimed_user_id":"\#(claimed)","claimed_device_id":"\#(device)"}\#(extra)}"#
    }

    static func jwtClaims(_ response: Response) throws -> JSONValue {
        let body = try JSONParser.parse(response.body)
        let jwt = try #require(body["jwt"]?.stringValue)
        let payload = try #require(Base64.decodeURL(String(jwt.split(separator: ".")[1])))
        return try JSONParser.parse(payload)
    }

    @Test func fullAccessUserGetsATokenAndTheRoomIsCreated() throws {
        let harness = Harness()
        let response = harness.post("/get_token", Self.tokenBody())
        #expect(response.status == 200)
        #expect(response.headers["Access-Control-Allow-Origin"] == "*")
        #expect(response.bodyText.hasSuffix("}\n"))
        #expect(try JSONParser.parse(response.body)["url"] == .string("wss://sfu.example.com"))
        let claims = try Self.jwtClaims(response)
        let identity = HashedName.identity(userID: "@alice:\(Self.fullServer)", deviceID: "DEVICE", memberID: "member-1")
        #expect(claims["sub"] == .string(identity))
        #expect(claims["identity"] == .string(identity))
        #expect(claims["video"]?["room"] == .string("hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"))
        #expect(claims["exp"] == .number("1700003600"))
        let createRoom = try #require(harness.http.requests(containing: "CreateRoom").first)
        #expect(createRoom.body == RoomServiceClient.createRoomBody(alias: "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"))
    }

    @Test func userinfoGoesToTheServerWithTheTokenFormEncoded() throws {
        let harness = Harness()
        _ = harness.post("/get_token", Self.tokenBody(accessToken: "good-alice x/+"))
        let userinfo = try #require(harness.http.requests(containing: "userinfo").first)
        #expect(userinfo.url == "https://full.example.com:8448/_matrix/federation/v1/openid/userinfo?access_token=good-alice+x%2F%2B")
        #expect(userinfo.headers["host"] == Self.fullServer)
        #expect(userinfo.headers["authorization"] == nil)
    }

    @Test func restrictedUserGetsATokenButNoRoom() throws {
        let harness = Harness()
        let response = harness.post("/get_token", Self.tokenBody(server: Self.restrictedServer))
        #expect(response.status == 200)
        #expect(harness.createRoomCalls == 0)
        #expect(try Self.jwtClaims(response)["video"]?["roomJoin"] == .bool(true))
    }

    @Test func legacyEndpointUsesThePlainIdentityAndTheFixedSlot() throws {
        let harness = Harness()
        let body = #"{"room":"!room:example.com","device_id":"DEVICE","openid_token":{"access_token":"good-alice","matrix_server_name":"\#(Self.fullServer)"}}"#
        let response = harness.post("/sfu/get", body)
        #expect(response.status == 200)
        let claims = try Self.jwtClaims(response)
        #expect(claims["sub"] == .string("@alice:\(Self.fullServer):DEVICE"))
        #expect(claims["video"]?["room"] == .string(HashedName.legacyRoomAlias(roomID: "!room:example.com")))
        #expect(harness.createRoomCalls == 1)
    }

    @Test(arguments: [
        (tokenBody(roomID: ""), "The request body is missing `room_id` or `slot_id`"),
        (tokenBody(slotID: ""), "The request body is missing `room_id` or `slot_id`"),
        (tokenBody(member: ""), "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`"),
        (tokenBody(device: ""), "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`"),
        (tokenBody(accessToken: ""), "The request body `openid_token` is missing a `access_token` or `matrix_server_name`"),
        (tokenBody(extra: #","delay_id":"d""#), "The request body is missing `delay_id` or `delay_timeout`"),
        (tokenBody(extra: #","delay_timeout":5"#), "The request body is missing `delay_id` or `delay_timeout`"),
        (#"{"slot_id":"s","member":{}}"#, "The request body is missing `room_id` or `slot_id`"),
        (#"null"#, "The request body is missing `room_id` or `slot_id`"),
        (#"{"room_id":"r","slot_id":"s","openid_token":{}}"#, "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`"),
    ])
    func getTokenValidation(body: String, text: String) throws {
        let harness = Harness()
        let response = harness.post("/get_token", body)
        #expect(response.status == 400)
        #expect(response.bodyText == #"{"errcode":"M_BAD_JSON","error":"\#(text)"}"# + "\n")
        #expect(harness.http.requests.isEmpty)
    }

    @Test func negativeDelayTimeoutWithoutDelayIDIsNoDelegation() {
        let harness = Harness()
        #expect(harness.post("/get_token", Self.tokenBody(extra: #","delay_timeout":-5"#)).status == 200)
    }

    @Test(arguments: [
        (#"{"device_id":"D"}"#, "Missing room parameter"),
        (#"{"room":"!r:x","openid_token":{"access_token":"a"}}"#, "Missing OpenID token parameters"),
        (#"{"room":"!r:x","openid_token":{"access_token":"a","matrix_server_name":"s"},"delay_id":"x"}"#, "The request body is missing `delay_id` or `delay_timeout`"),
    ])
    func legacyValidation(body: String, text: String) {
        let response = Harness().post("/sfu/get", body)
        #expect(response.status == 400)
        #expect(response.bodyText == #"{"errcode":"M_BAD_JSON","error":"\#(text)"}"# + "\n")
    }

    @Test(arguments: [
        "", "   ", "{", "[]", "\"x\"", "42", "true", "{} {}",
        tokenBody(extra: #","unknown":1"#),
        tokenBody(extra: #","delay_timeout":"8000""#),
        tokenBody(extra: #","delay_timeout":8000.0"#),
        tokenBody(extra: #","delay_timeout":8e3"#),
        tokenBody(extra: #","delay_timeout":9223372036854775808"#),
        tokenBody(extra: #","ROOM_ID":"x""#),
        #"{"room_id":"r","member":"x"}"#,
        #"{"room_id":1}"#,
        #"{"openid_token":{"access_token":"a","extra":true}}"#,
        #"{"member":{"id":"a","device":"b"}}"#,
        #"{"openid_token":{"expires_in":1.5}}"#,
        String(repeating: "[", count: 100_000),
    ])
    func undecodableBodiesAreNotJSON(body: String) {
        let harness = Harness()
        let response = harness.post("/get_token", body)
        #expect(response.status == 400)
        #expect(response.bodyText == #"{"errcode":"M_NOT_JSON","error":"Error reading request"}"# + "\n")
        #expect(response.headers["Content-Type"] == "application/json")
    }

    @Test func invalidUTF8IsNotJSON() {
        let harness = Harness()
        var body = Array(Self.tokenBody().utf8)
        body.insert(0xFF, at: 15)
        let response = harness.service.respond(to: Request(method: "POST", path: "/get_token", body: .bytes(body)))
        #expect(response.status == 400)
        #expect(response.bodyText.contains("M_NOT_JSON"))
    }

    @Test func oversizedBodiesAreRejectedWithCORS() {
        for path in ["/get_token", "/sfu/get", "/delegate_delayed_leave"] {
            let response = Harness().service.respond(to: Request(method: "POST", path: path, body: .tooLarge))
            #expect(response.status == 413)
            #expect(response.bodyText == #"{"errcode":"M_TOO_LARGE","error":"Request body too large"}"# + "\n")
            #expect(response.headers["Access-Control-Allow-Methods"] == "POST")
        }
    }

    @Test func failedVerificationAndMismatchedClaimsAreUnauthorised() {
        let harness = Harness()
        let unknownToken = harness.post("/get_token", Self.tokenBody(accessToken: "bad"))
        #expect(unknownToken.status == 401)
        #expect(unknownToken.bodyText == #"{"errcode":"M_UNAUTHORIZED","error":"The request could not be authorised."}"# + "\n")
        let mismatch = harness.post("/get_token", Self.tokenBody(user: "@mallory:\(Self.fullServer)"))
        #expect(mismatch.status == 401)
        #expect(harness.createRoomCalls == 0)
    }

    @Test func invalidServerNamesAreUnauthorisedWithoutACall() {
        let harness = Harness()
        for server in ["exa_mple.com", "example.com:", "::1", "*"] {
            #expect(harness.post("/get_token", Self.tokenBody(server: server)).status == 401)
        }
        #expect(harness.http.requests.isEmpty)
    }

    @Test func sfuFailureIsAServerError() {
        let harness = Harness(sfuStatus: 500)
        let response = harness.post("/get_token", Self.tokenBody())
        #expect(response.status == 500)
        #expect(response.bodyText == #"{"errcode":"M_UNKNOWN","error":"Unable to create room on SFU"}"# + "\n")
    }

    @Test func restrictedUsersCannotDelegate() {
        let harness = Harness(delegation: RecordingDelegation(resolvable: true))
        let extra = #","delay_id":"syd_1","delay_timeout":8000"#
        let token = harness.post("/get_token", Self.tokenBody(server: Self.restrictedServer, extra: extra))
        #expect(token.status == 400)
        #expect(token.bodyText.contains("Delegation of delayed events is only supported for full access users"))
        let delegate = harness.post("/delegate_delayed_leave", Self.tokenBody(server: Self.restrictedServer, extra: extra))
        #expect(delegate.status == 403)
        #expect(delegate.bodyText == #"{"errcode":"M_FORBIDDEN","error":"Delegation of delayed events is only supported for full access users"}"# + "\n")
    }

    @Test func unresolvableClientServerAPILeavesNoRoomBehind() {
        let harness = Harness(delegation: RecordingDelegation(resolvable: false))
        let response = harness.post("/get_token", Self.tokenBody(extra: #","delay_id":"syd_1","delay_timeout":8000"#))
        #expect(response.status == 400)
        #expect(response.bodyText.contains("Unable to resolve client-server API"))
        #expect(harness.createRoomCalls == 0)
    }

    @Test func fullAccessDelegationHandsOverTheJobWithBothIdentities() throws {
        let delegation = RecordingDelegation(resolvable: true)
        let harness = Harness(delegation: delegation)
        let response = harness.post("/get_token", Self.tokenBody(extra: #","delay_id":"syd_1","delay_timeout":8000"#))
        #expect(response.status == 200)
        let handover = try #require(delegation.accepted.withLock { $0.first })
        #expect(handover.delayID == "syd_1")
        #expect(handover.delayTimeout == 8000)
        #expect(handover.roomAlias == "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY")
        #expect(handover.alternativeIdentities == ["@alice:\(Self.fullServer):DEVICE"])

        let delegated = harness.post("/delegate_delayed_leave", Self.tokenBody(extra: #","delay_id":"syd_2","delay_timeout":8000"#))
        #expect(delegated.status == 200)
        #expect(delegated.bodyText == "{}\n")
        #expect(harness.createRoomCalls == 1)
    }

    @Test func delegationWithoutAJobStoreIsUnavailable() {
        let response = Harness().post("/delegate_delayed_leave", Self.tokenBody(extra: #","delay_id":"syd_1","delay_timeout":8000"#))
        #expect(response.status == 503)
    }

    @Test(arguments: [
        (#"{"room_id":"r"}"#, "The request body is missing `room_id` or `slot_id`"),
        (tokenBody(member: ""), "The request body `member` is missing `id`, `claimed_user_id` or `claimed_device_id`"),
        (tokenBody(accessToken: ""), "The request body `openid_token` is missing `access_token` or `matrix_server_name`"),
        (tokenBody(), "The request body is missing `delay_id` or `delay_timeout`"),
        (tokenBody(extra: #","delay_id":"d","delay_timeout":0"#), "The request body is missing `delay_id` or `delay_timeout`"),
    ])
    func delegationValidation(body: String, text: String) {
        let response = Harness().post("/delegate_delayed_leave", body)
        #expect(response.status == 400)
        #expect(response.bodyText == #"{"errcode":"M_BAD_JSON","error":"\#(text)"}"# + "\n")
    }

    @Test(arguments: ["/get_token", "/livekit/jwt/get_token", "/a/b/c/get_token"])
    func routingMatchesTheTailOfThePath(path: String) {
        #expect(Harness().post(path, Self.tokenBody()).status == 200)
    }

    @Test(arguments: ["/", "/get_token/", "/xget_token", "/get_tokens", "/sfu/get/x", "/GET_TOKEN"])
    func unknownPathsAreUnrecognised(path: String) {
        let response = Harness().post(path, Self.tokenBody())
        #expect(response.status == 404)
        #expect(response.bodyText == #"{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}"# + "\n")
    }

    @Test(arguments: ["/get_token", "/sfu/get", "/delegate_delayed_leave"])
    func preflightAndWrongMethods(path: String) {
        let service = Harness().service
        let preflight = service.respond(to: Request(method: "OPTIONS", path: path))
        #expect(preflight.status == 200)
        #expect(preflight.body.isEmpty)
        #expect(preflight.headers.map(\.name) == ["Content-Type", "Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"])
        #expect(preflight.headers["Access-Control-Allow-Headers"] == "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token")
        for method in ["GET", "PUT", "DELETE"] {
            let response = service.respond(to: Request(method: HTTPMethod(rawValue: method), path: path))
            #expect(response.status == 405)
            #expect(response.headers["Allow"] == "POST, OPTIONS")
            #expect(response.bodyText == #"{"errcode":"M_UNRECOGNIZED","error":"Method not allowed"}"# + "\n")
        }
        let head = service.respond(to: Request(method: "HEAD", path: path))
        #expect(head.status == 405)
        #expect(head.body.isEmpty)
    }

    @Test func healthz() {
        let service = Harness().service
        #expect(service.respond(to: Request(method: "GET", path: "/healthz")) == Response(status: 200))
        #expect(service.respond(to: Request(method: "HEAD", path: "/prefix/healthz")) == Response(status: 200))
        let post = service.respond(to: Request(method: "POST", path: "/healthz"))
        #expect(post.status == 405)
        #expect(post.body.isEmpty)
    }

    @Test func webhookAlwaysAnswers200WithoutHeaders() {
        let delegation = RecordingDelegation(resolvable: true)
        let response = Harness(delegation: delegation).service.respond(to: Request(method: "POST", path: "/sfu_webhook", body: .bytes(Array("garbage".utf8))))
        #expect(response == Response(status: 200))
        #expect(delegation.applied.withLock { $0 }.isEmpty)
    }

    /// Contract §7.3, through the endpoint (with the Harness' key and secret).
    @Test func signedWebhookReachesTheJobs() throws {
        let delegation = RecordingDelegation(resolvable: true)
        let service = Harness(delegation: delegation).service
        let body = #"{"event":"participant_left","room":{"name":"O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"},"participant":{"identity":"J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU","disconnectReason":"CLIENT_INITIATED"},"id":"EV_test","createdAt":"1700000000"}"#
        let authorization = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZXZrZXkiLCJleHAiOjE3MDAwMDAzMDAsIm5iZiI6MTcwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwLCJzaGEyNTYiOiIxaHl0RktDbW9tRE8wSGpOZDVyamh4ZDBvcEZZZzF3RjZjd2VzeGdoeTljPSJ9.45uXWhn4X3Ola_OWiTVj7nOVoePTElhO4N7BbBffWS0"
        let signed = Request(method: "POST", path: "/sfu_webhook", headers: ["authorization": authorization], body: .bytes(Array(body.utf8)))
        #expect(service.respond(to: signed) == Response(status: 200))
        #expect(delegation.applied.withLock { $0 } == [
            "ParticipantDisconnectedIntentionally O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU",
        ])
        var tampered = signed
        tampered.body = .bytes(Array(body.utf8.map { $0 == UInt8(ascii: "C") ? UInt8(ascii: "D") : $0 }))
        #expect(service.respond(to: tampered) == Response(status: 200))
        #expect(delegation.applied.withLock { $0 }.count == 1)
    }

    @Test func cgiSerialisation() {
        let response = Response(status: 405, headers: [("Allow", "POST, OPTIONS")], body: Array("x".utf8))
        #expect(String(decoding: response.cgiBytes(), as: UTF8.self) == "Status: 405 Method Not Allowed\r\nAllow: POST, OPTIONS\r\n\r\nx")
        #expect(String(decoding: Response(status: 599).cgiBytes(), as: UTF8.self) == "Status: 599\r\n\r\n", "no made-up reason phrase")
    }

    @Test(arguments: ["/get_token", "/healthz", "/sfu_webhook", "/nowhere"])
    func headAnswersAreTheGetAnswersWithoutTheirBody(path: String) {
        let service = Harness().service
        let get = service.respond(to: Request(method: .get, path: path))
        #expect(service.respond(to: Request(method: .head, path: path)) == Response(status: get.status, headers: get.headers))
    }
}
