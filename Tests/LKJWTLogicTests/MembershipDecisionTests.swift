import Testing

@testable import LKJWTLogic

/// The sweep's decisions (AS-MODE.md B4, notes §4.3), one case each as issue 10 lists them.
struct MembershipDecisionTests {
    static let alice = "@alice:example.org"
    static let bob = "@bob:remote.example"

    static func participant(_ user: String = alice, connected: Bool = true, pending: TrackedParticipant.Removal? = nil) -> TrackedParticipant {
        TrackedParticipant(
            matrixRoomID: "!room:example.org", matrixUserID: user, liveKitRoom: "alias", liveKitIdentity: "lk-\(user)", registeredAt: 0,
            connected: connected, pendingRemoval: pending)
    }

    /// `is_joined` must only be asked on a 403.
    static func never() -> ServerJoinedAnswer {
        Issue.record("is_joined asked although joined_members answered")
        return .failed("not expected")
    }

    @Test func joinedMemberStays() {
        let room = MembershipDecision.room(.members([Self.alice, Self.bob]), ownServer: Self.never)
        #expect(room == .joined([Self.alice, Self.bob]))
        #expect(MembershipDecision.action(for: Self.participant(), in: room) == .none)
        #expect(MembershipDecision.action(for: Self.participant(Self.bob), in: room) == .none)
    }

    /// Left, kicked and banned users are all missing from `joined_members`.
    @Test(arguments: ["left", "banned"])
    func userNoLongerJoinedIsRemoved(_ how: String) {
        let room = MembershipDecision.room(.members([Self.bob]), ownServer: Self.never)
        #expect(MembershipDecision.action(for: Self.participant(), in: room) == .remove(.participant))
        #expect(MembershipDecision.action(for: Self.participant(Self.bob), in: room) == .none)
    }

    @Test func serverLeftDeletesTheRoom() {
        let room = MembershipDecision.room(.forbidden) { .notJoined }
        #expect(room == .serverLeft)
        #expect(MembershipDecision.action(for: Self.participant(), in: room) == .remove(.room))
        #expect(MembershipDecision.action(for: Self.participant(Self.bob), in: room) == .remove(.room))
    }

    @Test(arguments: ["joined_members answered HTTP 502", "connect to matrix.example.org: Connection refused"])
    func homeserverDownRemovesNobody(_ reason: String) {
        let room = MembershipDecision.room(.failed(reason), ownServer: Self.never)
        #expect(room == .unknown(.homeserverError(reason)))
        #expect(MembershipDecision.action(for: Self.participant(), in: room) == .none)
    }

    @Test func forbiddenWithoutOurServerHavingLeftRemovesNobody() {
        let room = MembershipDecision.room(.forbidden) { .joined }
        #expect(room == .unknown(.notAllowedToLook))
        #expect(MembershipDecision.action(for: Self.participant(), in: room) == .none)
    }

    @Test func forbiddenAndIsJoinedFailingRemovesNobody() {
        let room = MembershipDecision.room(.forbidden) { .failed("HTTP 500") }
        guard case .unknown(.homeserverError) = room else {
            Issue.record("expected fail-open, got \(room)")
            return
        }
        #expect(MembershipDecision.action(for: Self.participant(), in: room) == .none)
    }

    /// Not on the SFU: nothing to remove; the check when it joins decides then.
    @Test func participantNotOnTheSFUIsLeftAlone() {
        let absent = Self.participant(connected: false)
        #expect(MembershipDecision.action(for: absent, in: .joined([])) == .none)
        #expect(MembershipDecision.action(for: absent, in: .serverLeft) == .none)
    }

    /// A removal the SFU has not confirmed is retried, also while the homeserver is down…
    @Test func pendingRemovalIsRetried() {
        let owed = Self.participant(connected: false, pending: .participant)
        #expect(MembershipDecision.action(for: owed, in: .unknown(.homeserverError("down"))) == .remove(.participant))
        #expect(MembershipDecision.action(for: owed, in: .joined([])) == .remove(.participant))
        let room = Self.participant(pending: .room)
        #expect(MembershipDecision.action(for: room, in: .unknown(.notAllowedToLook)) == .remove(.room))
        #expect(MembershipDecision.action(for: room, in: .serverLeft) == .remove(.room))
    }

    /// …unless the user is a member again.
    @Test func pendingRemovalOfAMemberAgainIsCancelled() {
        #expect(MembershipDecision.action(for: Self.participant(pending: .participant), in: .joined([Self.alice])) == .cancelRemoval)
    }

    // MARK: joined_members answers

    @Test func joinedMembersAnswerReadsTheJoinedObject() {
        let body = #"{"joined":{"@alice:example.org":{"display_name":"Alice","avatar_url":null},"@bob:remote.example":{}}}"#
        #expect(JoinedMembersAnswer(status: 200, body: Array(body.utf8)) == .members([Self.alice, Self.bob]))
        #expect(JoinedMembersAnswer(status: 200, body: Array(#"{"joined":{}}"#.utf8)) == .members([]))
    }

    @Test(arguments: [(200, "[]"), (200, #"{"joined":[]}"#), (200, "not json"), (500, "{}"), (404, "{}"), (429, "{}")])
    func otherAnswersFailOpen(status: Int, body: String) {
        guard case .failed = JoinedMembersAnswer(status: HTTPStatus(status), body: Array(body.utf8)) else {
            Issue.record("\(status) \(body) must count as a failure")
            return
        }
    }

    @Test func forbiddenIsItsOwnAnswer() {
        #expect(JoinedMembersAnswer(status: 403, body: Array(#"{"errcode":"M_FORBIDDEN","error":"Appservice not in room"}"#.utf8)) == .forbidden)
    }

    /// With the as_token, to our homeserver only, the room ID one path segment.
    @Test func joinedMembersAsksOurHomeserverWithTheApplicationServiceToken() throws {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in .json(200, #"{"joined":{"@alice:example.org":{}}}"#) }
        let client = ApplicationServiceClient(
            settings: ApplicationServiceSettings(asToken: "as-secret", hsToken: "hs", serverName: "example.org"), http: http, clock: FixedClock(),
            clientServerAPI: ClientServerAPIResolver(overrides: CSAPIURLOverrides(["example.org": "https://hs.example.org/"]), http: http, clock: FixedClock()))
        #expect(client.joinedMembers(of: "!a/b?c:example.org") == .members([Self.alice]))
        let request = try #require(http.requests.first)
        #expect(request.url == "https://hs.example.org/_matrix/client/v3/rooms/%21a%2Fb%3Fc%3Aexample.org/joined_members")
        #expect(request.headers["authorization"] == "Bearer as-secret" && request.method == "GET" && request.maximumRedirects == 0)
    }
}
