import Logging
import Synchronization
import Testing

@testable import LKJWTLogic

/// The membership monitor against an in-memory store, a scripted homeserver and a scripted SFU.
struct MembershipMonitorTests {
    /// The homeserver's answers, per Matrix room; changed by tests between sweeps.
    final class Homeserver: RoomMembershipSource {
        let members = Mutex<[String: JoinedMembersAnswer]>([:])
        let ownServer = Mutex<ServerJoinedAnswer>(.joined)
        let asked = Mutex<[String]>([])

        func joinedMembers(of room: String) -> JoinedMembersAnswer {
            asked.withLock { $0.append("joined_members \(room)") }
            return members.withLock { $0[room] } ?? .failed("no answer scripted")
        }

        func isOwnServerJoined(_ room: String) -> ServerJoinedAnswer {
            asked.withLock { $0.append("is_joined \(room)") }
            return ownServer.withLock { $0 }
        }
    }

    /// Identities the SFU has; and whether its removal calls fail.
    final class SFU: Sendable {
        let present = Mutex<Set<String>>([])
        let fails = Mutex(false)
    }

    final class World: Sendable {
        let store = InMemoryJobStore()
        let homeserver = Homeserver()
        let clock = MovableClock()
        let sfu = SFU()
        let http: ScriptedHTTPClient
        let monitor: MembershipMonitor

        init(owner: String = "owner-a") {
            let sfu = self.sfu
            http = ScriptedHTTPClient { request throws(OutboundError) in
                if sfu.fails.withLock({ $0 }) && !request.url.hasSuffix("/GetParticipant") {
                    return .json(503, #"{"code":"unavailable","msg":"down"}"#)
                }
                let body = String(decoding: request.body, as: UTF8.self)
                if request.url.hasSuffix("/GetParticipant") {
                    let here = sfu.present.withLock { set in set.contains { body.hasSuffix($0) } }
                    return here ? OutboundResponse(status: 200) : .json(404, #"{"code":"not_found","msg":"participant not found"}"#)
                }
                return OutboundResponse(status: 200)
            }
            monitor = Self.monitor(store: store, homeserver: homeserver, clock: clock, http: http, owner: owner)
        }

        static func monitor(store: any JobStore, homeserver: Homeserver, clock: MovableClock, http: ScriptedHTTPClient, owner: String) -> MembershipMonitor {
            MembershipMonitor(
                dependencies: .init(
                    store: store, roomService: RoomServiceClient(liveKitURL: "ws://sfu.test", apiKey: "k", apiSecret: "s", http: http, clock: clock),
                    homeserver: homeserver, clock: clock),
                intervalSeconds: 2, owner: owner, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        func track(_ user: String, room: String = "!room:example.org", alias: String = "alias") {
            monitor.track(matrixRoomID: room, matrixUserID: user, liveKitRoom: alias, liveKitIdentity: "lk-\(user)")
        }

        func webhook(_ event: String, _ user: String, alias: String = "alias") {
            monitor.apply(WebhookEvent(event: event, room: alias, participantIdentity: "lk-\(user)"))
        }

        /// A user given a token who then joined the call: the state most tests start from.
        func connect(_ user: String, alias: String = "alias") {
            track(user, alias: alias)
            webhook("participant_joined", user, alias: alias)
        }

        /// What the homeserver answers from now on about the room every test uses.
        func answerMembers(_ answer: JoinedMembersAnswer) {
            homeserver.members.withLock { $0["!room:example.org"] = answer }
        }

        /// Twirp calls other than presence look-ups, as "Method alias identity".
        var removals: [String] {
            http.requests.filter { !$0.url.hasSuffix("/GetParticipant") }.map { request in
                let method = String(request.url.split(separator: "/").last ?? "")
                return "\(method) \(String(decoding: request.body.filter { $0 >= 0x20 }, as: UTF8.self))"
            }
        }

        func participant(_ user: String, alias: String = "alias") throws -> TrackedParticipant? {
            try store.updateParticipant(JobKey(room: alias, identity: "lk-\(user)")) { $0 }
        }
    }

    static let alice = "@alice:example.org"
    static let bob = "@bob:example.org"

    @Test func connectedNonMemberIsRemovedOnceAndStaysTracked() throws {
        let world = World()
        world.connect(Self.alice)
        world.connect(Self.bob)
        world.answerMembers(.members([Self.bob]))
        let report = world.monitor.sweep()
        #expect(report.removed == 1 && report.failed == 0)
        #expect(world.removals == ["RemoveParticipant aliaslk-@alice:example.org"])
        // The SFU confirmed: no further RemoveParticipant, but the participant is still watched.
        let alice = try #require(try world.participant(Self.alice))
        #expect(!alice.connected && alice.pendingRemoval == nil)
        world.monitor.sweep()
        #expect(world.removals.count == 1)
    }

    @Test func removalUsesARoomAdminGrantForThatRoom() throws {
        let world = World()
        world.connect(Self.alice)
        world.answerMembers(.members([]))
        world.monitor.sweep()
        let request = try #require(world.http.requests.first { $0.url.hasSuffix("/twirp/livekit.RoomService/RemoveParticipant") })
        let token = try #require(request.headers["authorization"]?.dropFirst("Bearer ".count))
        let payload = try #require(token.split(separator: ".").dropFirst().first.flatMap { Base64.decodeURL(String($0)) })
        let claims = try JSONParser.parse(payload)
        #expect(claims["video"] == .object([JSONMember("roomAdmin", .bool(true)), JSONMember("room", .string("alias"))]))
        #expect(request.body == RoomServiceClient.participantIdentityBody(room: "alias", identity: "lk-\(Self.alice)"))
    }

    @Test func failedRemovalIsRetriedByTheNextSweepEvenWhileTheHomeserverIsDown() throws {
        let world = World()
        world.connect(Self.alice)
        world.answerMembers(.members([]))
        world.sfu.fails.withLock { $0 = true }
        #expect(world.monitor.sweep().failed == 1)
        #expect(try world.participant(Self.alice)?.pendingRemoval == .participant)
        world.sfu.fails.withLock { $0 = false }
        world.answerMembers(.failed("HTTP 502"))
        #expect(world.monitor.sweep().removed == 1)
        #expect(world.removals.count == 2)
        #expect(try world.participant(Self.alice)?.pendingRemoval == nil)
    }

    @Test func alreadyGoneCountsAsConfirmed() throws {
        let world = World()
        let http = ScriptedHTTPClient { _ throws(OutboundError) in .json(404, #"{"code":"not_found","msg":"participant not found"}"#) }
        let monitor = World.monitor(store: world.store, homeserver: world.homeserver, clock: world.clock, http: http, owner: "x")
        monitor.track(matrixRoomID: "!room:example.org", matrixUserID: Self.alice, liveKitRoom: "alias", liveKitIdentity: "lk-a")
        monitor.apply(WebhookEvent(event: "participant_joined", room: "alias", participantIdentity: "lk-a"))
        world.answerMembers(.members([]))
        #expect(monitor.sweep().removed == 1)
        #expect(try world.store.updateParticipant(JobKey(room: "alias", identity: "lk-a")) { $0?.pendingRemoval } == nil)
    }

    @Test func serverLeftDeletesTheRoomOnce() throws {
        let world = World()
        world.connect(Self.alice)
        world.connect(Self.bob)
        world.answerMembers(.forbidden)
        world.homeserver.ownServer.withLock { $0 = .notJoined }
        let report = world.monitor.sweep()
        #expect(report.roomsDeleted == 1 && report.removed == 2)
        #expect(world.removals == ["DeleteRoom alias"])
        world.monitor.sweep()
        #expect(world.removals.count == 1)
    }

    @Test func homeserverDownRemovesNobody() throws {
        let world = World()
        world.connect(Self.alice)
        world.answerMembers(.failed("connect to hs: Connection refused"))
        #expect(world.monitor.sweep().removed == 0)
        world.answerMembers(.forbidden)
        world.homeserver.ownServer.withLock { $0 = .joined }
        #expect(world.monitor.sweep().removed == 0)
        #expect(world.removals.isEmpty)
        #expect(try world.participant(Self.alice)?.connected == true)
    }

    @Test func pendingParticipantsAreLookedUpOnTheSFU() throws {
        let world = World()
        world.track(Self.alice)
        world.track(Self.bob)
        world.sfu.present.withLock { $0 = ["lk-\(Self.alice)"] }
        world.answerMembers(.members([]))
        world.monitor.sweep()
        // Found present in this sweep and removed in the same sweep; bob never joined the call.
        #expect(world.removals == ["RemoveParticipant aliaslk-@alice:example.org"])
        #expect(try world.participant(Self.bob)?.connected == false)
    }

    @Test func removedMembersDelayedLeaveJobIsDroppedWithoutSending() throws {
        let world = World()
        world.connect(Self.alice)
        let job = DelayedLeaveJob(
            key: JobKey(room: "alias", identity: "lk-\(Self.alice)"), jobID: "JOB", serverName: "example.org", delayID: "syd", delayTimeout: 8000,
            restartedAt: 0)
        #expect(try world.store.create(job, quota: .unlimited) == .created)
        world.answerMembers(.members([]))
        world.monitor.sweep()
        #expect(try world.store.allRecords().isEmpty)
        #expect(!world.http.requests.contains { $0.url.hasSuffix("/send") })
    }

    /// MSC4195's re-check: a removed user who comes back with the same token is removed at once.
    @Test func joiningTheSFUIsCheckedAtOnce() throws {
        let world = World()
        world.track(Self.alice)
        world.answerMembers(.members([]))
        world.webhook("participant_joined", Self.alice)
        world.monitor.checkJoined([JobKey(room: "alias", identity: "lk-\(Self.alice)")])
        #expect(world.removals.count == 1)
        world.webhook("participant_left", Self.alice)
        world.webhook("participant_joined", Self.alice)
        world.monitor.checkJoined([JobKey(room: "alias", identity: "lk-\(Self.alice)")])
        #expect(world.removals.count == 2)
        // A member is not touched.
        world.answerMembers(.members([Self.alice]))
        world.webhook("participant_joined", Self.alice)
        world.monitor.checkJoined([JobKey(room: "alias", identity: "lk-\(Self.alice)")])
        #expect(world.removals.count == 2)
    }

    @Test func untrackedParticipantsAreIgnored() throws {
        let world = World()
        world.webhook("participant_joined", Self.alice)
        #expect(try world.store.trackedParticipants().isEmpty)
        world.answerMembers(.members([]))
        world.monitor.checkJoined([JobKey(room: "alias", identity: "lk-\(Self.alice)")])
        #expect(world.removals.isEmpty && world.homeserver.asked.withLock { $0 }.isEmpty)
    }

    @Test func participantsStayUntilTheirTokenExpired() throws {
        let world = World()
        world.connect(Self.alice)
        world.webhook("participant_left", Self.alice)
        #expect(try world.participant(Self.alice) != nil)
        world.clock.advance(seconds: 3_599)
        world.monitor.sweep()
        #expect(try world.participant(Self.alice) != nil)
        world.clock.advance(seconds: 1)
        #expect(world.monitor.sweep().forgotten == 1)
        #expect(try world.participant(Self.alice) == nil)
        // A connected one stays past expiry until it leaves.
        world.connect(Self.bob)
        world.clock.advance(seconds: 4_000)
        world.answerMembers(.members([Self.bob]))
        world.monitor.sweep()
        #expect(try world.participant(Self.bob) != nil)
        world.webhook("participant_left", Self.bob)
        #expect(try world.participant(Self.bob) == nil)
    }

    @Test func roomFinishedMarksEveryoneInTheRoomGone() throws {
        let world = World()
        world.connect(Self.alice)
        world.connect(Self.bob, alias: "other")
        world.monitor.apply(WebhookEvent(event: "room_finished", room: "alias", participantIdentity: ""))
        #expect(try world.participant(Self.alice)?.connected == false)
        #expect(try world.participant(Self.bob, alias: "other")?.connected == true)
    }

    /// A new token means the endpoint just saw a member: a removal still owed is void.
    @Test func newTokenKeepsConnectedAndClearsAPendingRemoval() throws {
        let world = World()
        world.connect(Self.alice)
        try world.store.updateParticipant(JobKey(room: "alias", identity: "lk-\(Self.alice)")) { $0?.pendingRemoval = .participant }
        world.clock.advance(seconds: 10)
        world.track(Self.alice)
        let alice = try #require(try world.participant(Self.alice))
        #expect(alice.connected && alice.pendingRemoval == nil && alice.registeredAt == world.clock.now().unixMilliseconds)
    }

    /// Two processes on one store: one sweep per interval between them.
    @Test func oneSweepPerIntervalAcrossProcesses() throws {
        let world = World()
        let other = World.monitor(store: world.store, homeserver: world.homeserver, clock: world.clock, http: world.http, owner: "owner-b")
        world.connect(Self.alice)
        world.answerMembers(.members([Self.alice]))
        for _ in 0..<10 {
            _ = world.monitor.sweepIfDue()
            _ = other.sweepIfDue()
            world.clock.advance(seconds: 1)
        }
        // 10 s with a 2 s interval: five sweeps, each one joined_members call.
        #expect(world.homeserver.asked.withLock { $0 }.count == 5)
    }

    /// A sweeper that died mid-sweep (its claim-owner record lapsed) is replaced at once, not after its lease.
    @Test func aDeadSweepersLeaseIsTakenOverAtOnce() throws {
        let world = World()
        let other = World.monitor(store: world.store, homeserver: world.homeserver, clock: world.clock, http: world.http, owner: "owner-b")
        let now = world.clock.now().unixMilliseconds
        #expect(try world.store.claimMembershipSweep(owner: "owner-a", now: now, interval: 2_000, lease: MembershipMonitor.sweepLease, goneOwners: []) == .claimed)
        try world.store.renewLiveness(of: "owner-a", expires: now + 2_500)
        world.clock.advance(seconds: 2)
        // owner-a is alive: its sweep is still running.
        #expect(other.sweepIfDue() < now + 3_000)
        #expect(try world.store.claimMembershipSweep(owner: "owner-c", now: now + 2_000, interval: 2_000, lease: 1, goneOwners: []) != .claimed)
        world.clock.advance(seconds: 1)
        // Its record lapsed: taken over at once, with the lease 10 minutes from ending.
        #expect(other.sweepIfDue() == now + 3_000 + 2_000)
    }

    /// The monitor's own thread runs the check at `participant_joined`: the sweep was just done (by
    /// "another process") and the clock stands still, so only that check can remove the user.
    @Test func theThreadChecksJoinedParticipants() throws {
        let world = World()
        world.answerMembers(.members([]))
        let now = world.clock.now().unixMilliseconds
        #expect(try world.store.claimMembershipSweep(owner: "elsewhere", now: now, interval: 2_000, lease: 1, goneOwners: []) == .claimed)
        try world.store.releaseMembershipSweep(owner: "elsewhere")
        world.monitor.start()
        defer { world.monitor.stop() }
        world.connect(Self.alice)
        let deadline = Deadline(after: .seconds(5))
        while world.removals.isEmpty, !deadline.hasPassed {
            SystemCall.sleep(for: .milliseconds(10))
        }
        #expect(world.removals == ["RemoveParticipant aliaslk-@alice:example.org"])
    }
}
