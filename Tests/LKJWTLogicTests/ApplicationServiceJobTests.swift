import Logging
import Synchronization
import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

/// AS-MODE.md B3: jobs of the application-service endpoints record their owner, restart and send
/// as that owner with the as_token, and end on a 409; standalone jobs keep contract §9.2.
struct ApplicationServiceJobTests {
    static let settings = ApplicationServiceSettings(asToken: "the-as-token", hsToken: "the-hs-token", serverName: "hs.example.com")

    static func handover(actsAsOwner: Bool, serverName: String = "hs.example.com") -> DelayedLeaveHandover {
        DelayedLeaveHandover(
            serverName: serverName, ownerUserID: "@alice:hs.example.com", actsAsOwner: actsAsOwner, quota: .standard(serverAdmittedByWildcard: false),
            delayID: "syd_1", delayTimeout: 8000, roomAlias: "room", identity: "identity")
    }

    struct World {
        let http: ScriptedHTTPClient
        let store = InMemoryJobStore()
        let jobs: DelayedLeaveJobs

        init(status: Int = 200, applicationService: Bool = true) {
            let http = ScriptedHTTPClient { request throws(OutboundError) in
                request.url.contains("/twirp/") ? OutboundResponse(status: 200) : .json(HTTPStatus(status), "{}")
            }
            self.http = http
            let resolver = ClientServerAPIResolver(
                overrides: CSAPIURLOverrides(["hs.example.com": "http://cs.hs.test/", "other.example": "http://cs.other.test"]), http: http, clock: FixedClock())
            jobs = DelayedLeaveJobs(
                dependencies: .init(
                    store: store, clientServerAPI: resolver,
                    roomService: RoomServiceClient(liveKitURL: "ws://sfu.test", apiKey: "k", apiSecret: "s", http: http, clock: FixedClock()),
                    delayedEvents: DelayedEventClient(http: http, clock: FixedClock()),
                    applicationService: applicationService
                        ? ApplicationServiceClient(settings: ApplicationServiceJobTests.settings, http: http, clock: FixedClock(), clientServerAPI: resolver)
                        : nil,
                    clock: FixedClock(), random: FixedRandomSource(byte: 7)),
                settings: JobMachine.Settings(), logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        /// Creates the job, connects the participant and returns the restart work that follows.
        func restartWork(_ handover: DelayedLeaveHandover) throws -> JobMachine.Work {
            #expect(jobs.accept(handover) == nil)
            jobs.apply(.participantConnected, room: handover.roomAlias, identity: handover.identity)
            return try #require(jobs.claimDueWork(limit: 10).first { $0.kind == .restart })
        }

        var delayedEventCalls: [ScriptedHTTPClient.RecordedRequest] { http.requests(containing: "/delayed_events/") }
    }

    @Test func applicationServiceJobsRestartAsTheirOwner() throws {
        let world = World()
        let work = try world.restartWork(Self.handover(actsAsOwner: true))
        #expect(work.actingUserID == "@alice:hs.example.com")
        world.jobs.perform(work)
        let restart = try #require(world.delayedEventCalls.first)
        #expect(restart.method == "POST")
        #expect(restart.url == "http://cs.hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_1/restart?user_id=%40alice%3Ahs.example.com")
        #expect(restart.headers["authorization"] == "Bearer the-as-token")
        #expect(restart.headers["content-type"] == "application/json")
        #expect(String(decoding: restart.body, as: UTF8.self) == "{}")
        #expect(restart.maximumRedirects == 0)
    }

    /// Standalone jobs have an owner too (for quotas) but keep §9.2: the delay ID alone.
    @Test func standaloneJobsKeepTheCapabilityForm() throws {
        let world = World()
        let work = try world.restartWork(Self.handover(actsAsOwner: false))
        #expect(work.actingUserID == nil)
        world.jobs.perform(work)
        let restart = try #require(world.delayedEventCalls.first)
        #expect(restart.url == "http://cs.hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_1/restart")
        #expect(restart.headers["authorization"] == nil)
    }

    /// B2.8: the as_token never goes to another server, and not without application-service mode.
    @Test(arguments: [(true, "other.example"), (false, "hs.example.com")])
    func asTokenOnlyToTheConfiguredHomeserver(_ applicationService: Bool, _ server: String) throws {
        let world = World(applicationService: applicationService)
        world.jobs.perform(try world.restartWork(Self.handover(actsAsOwner: true, serverName: server)))
        let restart = try #require(world.delayedEventCalls.first)
        #expect(restart.headers["authorization"] == nil)
        #expect(!restart.url.contains("user_id="))
    }

    @Test func sendIsMadeAsTheOwnerToo() throws {
        let world = World()
        #expect(world.jobs.accept(Self.handover(actsAsOwner: true)) == nil)
        world.jobs.apply(.participantConnected, room: "room", identity: "identity")
        world.jobs.apply(.participantDisconnectedIntentionally, room: "room", identity: "identity")
        let send = try #require(world.jobs.claimDueWork(limit: 10).first { $0.kind == .send })
        world.jobs.perform(send)
        let call = try #require(world.delayedEventCalls.last)
        #expect(call.url == "http://cs.hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_1/send?user_id=%40alice%3Ahs.example.com")
        #expect(call.headers["authorization"] == "Bearer the-as-token")
        #expect(try world.store.allRecords().isEmpty)
    }

    /// B3: 409 on send = cancelled by someone else: the job ends at once, no retry.
    @Test func conflictOnSendEndsTheJob() throws {
        let world = World(status: 409)
        #expect(world.jobs.accept(Self.handover(actsAsOwner: true)) == nil)
        world.jobs.apply(.participantConnected, room: "room", identity: "identity")
        world.jobs.apply(.participantConnectionAborted, room: "room", identity: "identity")
        let send = try #require(world.jobs.claimDueWork(limit: 10).first { $0.kind == .send })
        world.jobs.perform(send)
        #expect(try world.store.allRecords().isEmpty)
        #expect(world.delayedEventCalls.filter { $0.url.contains("/send") }.count == 1)
    }

    /// B3: 409 on restart is as final as 404: the job aborts without a send.
    @Test func conflictOnRestartAbortsTheJob() throws {
        let world = World(status: 409)
        world.jobs.perform(try world.restartWork(Self.handover(actsAsOwner: true)))
        #expect(try world.store.allRecords().isEmpty)
        #expect(!world.delayedEventCalls.contains { $0.url.contains("/send") })
    }

    /// Standalone jobs keep §9.3: a 409 is an unexpected status, retried.
    @Test func conflictOnAStandaloneRestartIsRetried() throws {
        let world = World(status: 409)
        world.jobs.perform(try world.restartWork(Self.handover(actsAsOwner: false)))
        let job = try #require(try world.store.allRecords().first?.job.get())
        #expect(job.state == .connected)
        #expect(job.restart?.claim == nil)
    }

    @Test(arguments: [
        (200, DelayedEventOutcome.success), (204, .success), (404, .notFound), (409, .conflict),
        (500, .retry(after: nil, reason: "CS API temporarily unavailable (http status code 500)")),
        (403, .retry(after: nil, reason: "CS API returned unexpected status: 403")),
    ])
    func ownerCallsAreClassified(_ status: Int, _ expected: DelayedEventOutcome) {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in .json(HTTPStatus(status), "{}") }
        let client = ApplicationServiceClient(
            settings: Self.settings, http: http, clock: FixedClock(), clientServerAPI: ClientServerAPIResolver(overrides: CSAPIURLOverrides(), http: http, clock: FixedClock()))
        #expect(client.perform(.restart, delayID: "d", userID: "@a:b", baseURL: "http://x") == expected)
    }

    @Test func ownerCallsHonourRetryHints() {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in OutboundResponse(status: 429, headers: [("Retry-After", "3")]) }
        let client = ApplicationServiceClient(
            settings: Self.settings, http: http, clock: FixedClock(), clientServerAPI: ClientServerAPIResolver(overrides: CSAPIURLOverrides(), http: http, clock: FixedClock()))
        #expect(client.perform(.send, delayID: "d", userID: "@a:b", baseURL: "http://x") == .retry(after: 3000, reason: "CS API rate limited the request (http status code 429)"))
    }

    // MARK: Records

    @Test func recordKeepsActingAsOwner() throws {
        var job = DelayedLeaveJob(
            key: JobKey(room: "room", identity: "identity"), jobID: "J", serverName: "hs.example.com", ownerUserID: "@alice:hs.example.com",
            actsAsOwner: true, delayID: "syd_1", delayTimeout: 8000, restartedAt: 1_700_000_000_000)
        job.waitingTimerDue = 1
        let record = job.record()
        #expect(record.contains(#""OwnerUserId":"@alice:hs.example.com""#))
        #expect(record.contains(#""ActsAsOwner":true"#))
        #expect(try DelayedLeaveJob(record: record) == job)
        job.actsAsOwner = false
        #expect(!job.record().contains("ActsAsOwner"))
        #expect(try DelayedLeaveJob(record: job.record()).actsAsOwner == false)
    }

    /// Upstream keeps `OwnerUserId` only for jobs of its application-service endpoints.
    @Test(arguments: [("@alice:hs.example.com", true), ("", false)])
    func upstreamRecordsActAsTheirOwner(_ owner: String, _ acts: Bool) throws {
        let record = #"{"Params":{"DelayId":"d","DelayTimeout":8000000000,"ServerName":"hs.example.com","LiveKitRoom":"r","LiveKitIdentity":"i","OwnerUserId":"\#(owner)"},"RestartedAt":"2026-11-29T21:00:00Z"}"#
        let job = try DelayedLeaveJob(record: record)
        #expect(job.isForeign)
        #expect(job.actsAsOwner == acts)
        #expect(job.ownerUserID == owner)
    }
}
