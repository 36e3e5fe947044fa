import Logging
import Testing

@testable import LKJWTLogic

/// What every endpoint writes to the log at debug level (contract §10): the records operators rely
/// on are there, and no OpenID access token, issued JWT, LiveKit secret, bearer token sent to the SFU
/// or request body ever is (§10.1, DIFF-17). The delay ID is a logged field of the job records (§10.2).
struct EndpointLoggingTests {
    typealias Harness = AuthorizationServiceTests.Harness

    static let liveKitSecret = "devsecret"
    static let accessToken = "good-alice"
    static let fullUser = "@alice:\(AuthorizationServiceTests.fullServer)"

    /// Everything of this exchange that must stay out of the log: the secret, the access token, the
    /// JWTs the responses carry (whole and their signatures), the bearer tokens the service sent out,
    /// and the request bodies.
    static func secrets(_ harness: Harness, responses: [Response] = [], bodies: [String] = [], extra: [String] = []) -> [String] {
        let jwts = responses.compactMap { try? JSONParser.parse($0.body)["jwt"]?.stringValue }
        let signatures = jwts.compactMap { $0.split(separator: ".").last.map(String.init) }
        let bearers = harness.http.requests.compactMap { $0.headers["authorization"] }
        return [liveKitSecret, accessToken] + jwts + signatures + bearers + bodies + extra
    }

    static func post(_ harness: Harness, _ path: String, _ body: String) -> Response {
        harness.service.respond(to: Request(
            method: "POST", path: path, headers: ["origin": "https://app.example"], body: .bytes(Array(body.utf8)), remoteAddress: "192.0.2.7"))
    }

    // MARK: Token exchange

    @Test func issuedTokenIsLoggedWithoutTheTokenItself() throws {
        let harness = Harness()
        let body = AuthorizationServiceTests.tokenBody()
        let response = Self.post(harness, "/get_token", body)
        #expect(response.status == 200)
        #expect(harness.log.messages == ["LiveKit room ready", "Issued LiveKit token"])
        let issued = try harness.log.entry("Issued LiveKit token")
        #expect(issued.level == .info)
        #expect(issued.metadata["matrixId"] == .string(Self.fullUser))
        #expect(issued.metadata["claimedDeviceId"] == "DEVICE")
        #expect(issued.metadata["access"] == "full")
        #expect(issued.metadata["matrixRoom"] == "!room:example.com")
        #expect(issued.metadata["MatrixRTCSlot"] == "m.call#")
        #expect(issued.metadata["lkId"] == .string(HashedName.identity(userID: Self.fullUser, deviceID: "DEVICE", memberID: "member-1")))
        #expect(issued.metadata["room"] == "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY")
        #expect(issued.metadata["RemoteAddr"] == "192.0.2.7")
        #expect(issued.metadata["Origin"] == "https://app.example")
        let room = try harness.log.entry("LiveKit room ready")
        #expect(room.metadata["matrixUser"] == .string(Self.fullUser))
        harness.log.expectNone(of: Self.secrets(harness, responses: [response], bodies: [body]))
    }

    @Test func legacyTokenIsLoggedWithoutTheTokenItself() throws {
        let harness = Harness()
        let body = #"{"room":"!room:example.com","device_id":"DEVICE","openid_token":{"access_token":"good-alice","matrix_server_name":"\#(AuthorizationServiceTests.fullServer)"}}"#
        let response = Self.post(harness, "/sfu/get", body)
        #expect(response.status == 200)
        let issued = try harness.log.entry("Issued LiveKit token")
        #expect(issued.metadata["lkId"] == .string("\(Self.fullUser):DEVICE"))
        #expect(issued.metadata["MatrixRTCSlot"] == nil, "the legacy endpoint has no slot")
        harness.log.expectNone(of: Self.secrets(harness, responses: [response], bodies: [body]))
    }

    @Test func restrictedUserIsLoggedAsRestrictedWithoutARoom() throws {
        let harness = Harness()
        let body = AuthorizationServiceTests.tokenBody(server: AuthorizationServiceTests.restrictedServer)
        let response = Self.post(harness, "/get_token", body)
        #expect(response.status == 200)
        #expect(harness.log.messages == ["Issued LiveKit token"])
        #expect(try harness.log.entry("Issued LiveKit token").metadata["access"] == "restricted")
        harness.log.expectNone(of: Self.secrets(harness, responses: [response], bodies: [body]))
    }

    // MARK: Delayed-leave delegation

    /// Real jobs for the Harness' full-access server, logging to the world's recorder.
    static func jobs() -> (DelayedLeaveJobsTests.World, DelayedLeaveJobs) {
        let world = DelayedLeaveJobsTests.World()
        let (plain, _) = DelayedLeaveJobsTests.subsystem(world)
        var dependencies = plain.dependencies
        dependencies.clientServerAPI = ClientServerAPIResolver(
            overrides: CSAPIURLOverrides([AuthorizationServiceTests.fullServer: "http://hs.test"]), http: world.http, clock: world.clock)
        return (world, DelayedLeaveJobs(dependencies: dependencies, settings: plain.settings, logger: world.log.logger))
    }

    /// Real jobs behind the endpoints: the job record names the delay ID, as the contract wants it;
    /// the service's and the jobs' records hold no secret.
    @Test(arguments: ["/get_token", "/delegate_delayed_leave"])
    func delegationLogsTheJobWithItsDelayIDAndNoSecret(path: String) throws {
        let (world, jobs) = Self.jobs()
        let harness = Harness(delegation: jobs)
        let body = AuthorizationServiceTests.tokenBody(extra: #","delay_id":"syd_logged_1","delay_timeout":8000"#)
        let response = Self.post(harness, path, body)
        #expect(response.status == 200)

        #expect(world.log.messages == ["Delayed leave job scheduled"])
        let scheduled = try world.log.entry("Delayed leave job scheduled")
        #expect(scheduled.level == .info)
        #expect(scheduled.metadata["delayId"] == "syd_logged_1")
        #expect(scheduled.metadata["MatrixServerName"] == .string(AuthorizationServiceTests.fullServer))
        #expect(scheduled.metadata["lkId"] == .string(HashedName.identity(userID: Self.fullUser, deviceID: "DEVICE", memberID: "member-1")))
        #expect(harness.log.entries("Issued LiveKit token").count == (path == "/get_token" ? 1 : 0))
        let secrets = Self.secrets(harness, responses: [response], bodies: [body])
        harness.log.expectNone(of: secrets)
        world.log.expectNone(of: secrets)
    }

    /// A signed webhook for the delegated member moves its job: the transition is logged with the
    /// delay ID, the webhook's token is in neither log.
    @Test func webhookForADelegatedMemberLogsTheTransitionWithoutItsToken() throws {
        let (world, jobs) = Self.jobs()
        let harness = Harness(delegation: jobs)
        let body = AuthorizationServiceTests.tokenBody(extra: #","delay_id":"syd_hooked","delay_timeout":8000"#)
        #expect(Self.post(harness, "/delegate_delayed_leave", body).status == 200)
        let identity = HashedName.identity(userID: Self.fullUser, deviceID: "DEVICE", memberID: "member-1")
        let joined = Self.webhook(
            #"{"event":"participant_joined","room":{"name":"hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"},"participant":{"identity":"\#(identity)"},"id":"EV_2","createdAt":"1700000000"}"#)
        #expect(harness.service.respond(to: joined) == Response(status: 200))

        #expect(try harness.log.entry("Received webhook").metadata["lkId"] == .string(identity))
        let transition = try world.log.entry("Job state transition")
        #expect(transition.metadata["event"] == "ParticipantConnected")
        #expect(transition.metadata["to"] == "Connected")
        #expect(transition.metadata["delayId"] == "syd_hooked")
        let secrets = Self.secrets(harness, bodies: [body], extra: [joined.headers["authorization"] ?? "-"])
        harness.log.expectNone(of: secrets)
        world.log.expectNone(of: secrets)
    }

    @Test func refusedDelegationIsLoggedWithoutTheToken() throws {
        let harness = Harness(delegation: AuthorizationServiceTests.RecordingDelegation(resolvable: true))
        let body = AuthorizationServiceTests.tokenBody(server: AuthorizationServiceTests.restrictedServer, extra: #","delay_id":"syd_1","delay_timeout":8000"#)
        #expect(Self.post(harness, "/delegate_delayed_leave", body).status == 403)
        let refused = try harness.log.entry("Delegation refused")
        #expect(refused.metadata["access"] == "restricted")
        #expect(refused.metadata["matrixId"] == .string("@alice:\(AuthorizationServiceTests.restrictedServer)"))
        harness.log.expectNone(of: Self.secrets(harness, bodies: [body]))
    }

    // MARK: Webhook

    /// A webhook as LiveKit signs it (with the Harness' key and secret, at the Harness' fixed time).
    static func webhook(_ body: String, secret: String = liveKitSecret) -> Request {
        let bytes = Array(body.utf8)
        let claims = JSONValue.object([
            JSONMember("iss", .string("devkey")), JSONMember("exp", .integer(1_700_000_300)), JSONMember("nbf", .integer(1_700_000_000)),
            JSONMember("iat", .integer(1_700_000_000)), JSONMember("sha256", .string(WebhookTests.checksum(bytes))),
        ])
        return Request(
            method: "POST", path: "/sfu_webhook", headers: ["authorization": AccessToken.sign(claims: claims, secret: secret)], body: .bytes(bytes),
            remoteAddress: "192.0.2.8")
    }

    static let participantLeft = #"{"event":"participant_left","room":{"name":"\#(WebhookTests.alias)"},"participant":{"identity":"\#(WebhookTests.identity)","disconnectReason":"CLIENT_INITIATED"},"id":"EV_1","createdAt":"1700000000"}"#

    @Test func receivedWebhookIsLoggedWithoutItsSignature() throws {
        let delegation = AuthorizationServiceTests.RecordingDelegation(resolvable: true)
        let harness = Harness(delegation: delegation)
        let request = Self.webhook(Self.participantLeft)
        #expect(harness.service.respond(to: request) == Response(status: 200))
        #expect(delegation.applied.withLock { $0.count } == 1)
        let received = try harness.log.entry("Received webhook")
        #expect(received.level == .info)
        #expect(received.metadata["event"] == "participant_left")
        #expect(received.metadata["room"] == .string(WebhookTests.alias))
        #expect(received.metadata["lkId"] == .string(WebhookTests.identity))
        harness.log.expectNone(of: Self.secrets(harness, extra: [request.headers["authorization"] ?? "-"]))
    }

    @Test func forgedWebhookIsLoggedWithoutItsSignature() throws {
        let harness = Harness(delegation: AuthorizationServiceTests.RecordingDelegation(resolvable: true))
        let forged = Self.webhook(Self.participantLeft, secret: "not-the-secret")
        #expect(harness.service.respond(to: forged) == Response(status: 200))
        let failed = try harness.log.entry("Failed to validate webhook")
        #expect(failed.level == .warning)
        #expect(failed.metadata["RemoteAddr"] == "192.0.2.8")
        #expect(harness.log.entries("Received webhook").isEmpty)
        harness.log.expectNone(of: Self.secrets(harness, extra: [forged.headers["authorization"] ?? "-", "not-the-secret"]))
    }

    // MARK: Health check

    @Test func healthCheckIsOneDebugRecord() throws {
        let harness = Harness()
        #expect(harness.service.respond(to: Request(method: "GET", path: "/healthz", remoteAddress: "192.0.2.9")) == Response(status: 200))
        #expect(harness.log.messages == ["Health check"])
        let check = try harness.log.entry("Health check")
        #expect(check.level == .debug)
        #expect(check.metadata["RemoteAddr"] == "192.0.2.9")
    }

    // MARK: Errors

    @Test func unknownAccessTokenIsLoggedWithoutIt() throws {
        let harness = Harness()
        let body = AuthorizationServiceTests.tokenBody(accessToken: "stolen-token-1234")
        #expect(Self.post(harness, "/get_token", body).status == 401)
        let failed = try harness.log.entry("Failed to look up user info")
        #expect(failed.level == .error)
        #expect(failed.metadata["MatrixServerName"] == .string(AuthorizationServiceTests.fullServer))
        #expect(failed.metadata["RemoteAddr"] == "192.0.2.7")
        harness.log.expectNone(of: Self.secrets(harness, bodies: [body], extra: ["stolen-token-1234"]))
    }

    @Test func mismatchedClaimIsLoggedWithoutTheToken() throws {
        let harness = Harness()
        let body = AuthorizationServiceTests.tokenBody(user: "@mallory:\(AuthorizationServiceTests.fullServer)")
        #expect(Self.post(harness, "/get_token", body).status == 401)
        let mismatch = try harness.log.entry("Claimed user ID does not match the verified one")
        #expect(mismatch.metadata["claimedUserId"] == .string("@mallory:\(AuthorizationServiceTests.fullServer)"))
        #expect(mismatch.metadata["matrixId"] == .string(Self.fullUser))
        harness.log.expectNone(of: Self.secrets(harness, bodies: [body]))
    }

    @Test func unreadableBodyIsLoggedWithoutIt() throws {
        let harness = Harness()
        let body = AuthorizationServiceTests.tokenBody(extra: #","unknown":"x""#)
        #expect(Self.post(harness, "/get_token", body).status == 400)
        let error = try harness.log.entry("Error reading request")
        #expect(error.metadata["RemoteAddr"] == "192.0.2.7")
        harness.log.expectNone(of: Self.secrets(harness, bodies: [body]))
    }

    @Test func invalidRequestsLogNoSecret() {
        let harness = Harness()
        let bodies = [
            AuthorizationServiceTests.tokenBody(roomID: ""),
            AuthorizationServiceTests.tokenBody(extra: #","delay_id":"syd_only""#),
            AuthorizationServiceTests.tokenBody(member: ""),
        ]
        for body in bodies {
            #expect(Self.post(harness, "/get_token", body).status == 400)
        }
        harness.log.expectNone(of: Self.secrets(harness, bodies: bodies))
        #expect(harness.http.requests.isEmpty)
    }

    @Test func oversizedAndTimedOutBodiesAreLogged() throws {
        let harness = Harness()
        #expect(harness.service.respond(to: Request(method: "POST", path: "/get_token", body: .tooLarge, remoteAddress: "192.0.2.7")).status == 413)
        #expect(try harness.log.entry("Error reading request").metadata["err"] == "body larger than \(Request.maximumBodySize) bytes")
        #expect(harness.service.respond(to: Request(method: "POST", path: "/get_token", body: .timedOut, remoteAddress: "192.0.2.7")).status == 408)
        let timedOut = try harness.log.entry("Request body timed out")
        #expect(timedOut.level == .warning)
        #expect(timedOut.metadata["RemoteAddr"] == "192.0.2.7")
    }

    @Test func sfuFailureIsLoggedWithoutTheSFUToken() throws {
        let harness = Harness(sfuStatus: 500)
        let body = AuthorizationServiceTests.tokenBody()
        #expect(Self.post(harness, "/get_token", body).status == 500)
        let failed = try harness.log.entry("Unable to create room on SFU")
        #expect(failed.level == .error)
        #expect(failed.metadata["room"] == "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY")
        let bearers = harness.http.requests(containing: "/twirp/").compactMap { $0.headers["authorization"] }
        #expect(bearers.count == 1, "the CreateRoom call carried the service's own JWT")
        harness.log.expectNone(of: Self.secrets(harness, bodies: [body]))
    }
}
