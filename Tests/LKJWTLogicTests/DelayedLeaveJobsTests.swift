import Logging
import Synchronization
import Testing

@testable import LKJWTLogic

/// The jobs subsystem in one process on a manual clock: an in-memory store, and a scripted SFU and
/// homeserver behind the HTTP client. The tests do the scheduler's polling themselves (claim what is
/// due, perform it), so time passes only when a test moves the clock; one test runs the real scheduler
/// threads on the same manual clock.
struct DelayedLeaveJobsTests {
    /// What the fake SFU and homeserver answer; changed by tests while the scheduler runs.
    final class Script: Sendable {
        let present = Mutex<Set<String>>([])
        let restartStatus = Mutex(200)
    }

    static let liveKitSecret = "jobs-test-livekit-secret"

    final class World: Sendable {
        let script = Script()
        let http: ScriptedHTTPClient
        let clock = MovableClock()
        let log = RecordingLogHandler()
        /// Signalled at every send, for the test that runs the scheduler threads.
        let sent = Semaphore()

        init() {
            let script = self.script
            let sent = self.sent
            http = ScriptedHTTPClient { request throws(OutboundError) in
                if request.url.hasSuffix("/GetParticipant") {
                    // The body ends with the identity asked for (protobuf field 2).
                    let body = String(decoding: request.body, as: UTF8.self)
                    let here = script.present.withLock { set in set.contains { body.hasSuffix($0) } }
                    return here ? OutboundResponse(status: 200) : .json(404, #"{"code":"not_found","msg":"participant not found"}"#)
                }
                if request.url.hasSuffix("/restart") { return .json(HTTPStatus(script.restartStatus.withLock { $0 }), "{}") }
                if request.url.hasSuffix("/send") {
                    sent.signal()
                    return .json(200, "{}")
                }
                return .json(404, "{}")
            }
        }

        var sends: [String] { http.requests.filter { $0.url.hasSuffix("/send") }.map(\.url) }
        var restarts: Int { http.requests.filter { $0.url.hasSuffix("/restart") }.count }
        var lookups: Int { http.requests.filter { $0.url.hasSuffix("/GetParticipant") }.count }
        var now: Int64 { clock.now().unixMilliseconds }

        /// The SFU's bearer tokens (signed with the LiveKit secret) must not reach the log either.
        var sfuTokens: [String] { http.requests.compactMap { $0.headers["authorization"] } }
    }

    static func subsystem(_ world: World, store: any JobStore = InMemoryJobStore()) -> (DelayedLeaveJobs, JobScheduler) {
        let jobs = DelayedLeaveJobs(
            dependencies: .init(
                store: store,
                clientServerAPI: ClientServerAPIResolver(
                    overrides: CSAPIURLOverrides(["example.org": "http://hs.test"]), http: world.http, clock: world.clock),
                roomService: RoomServiceClient(liveKitURL: "ws://sfu.test", apiKey: "k", apiSecret: liveKitSecret, http: world.http, clock: world.clock),
                delayedEvents: DelayedEventClient(http: world.http, clock: world.clock),
                clock: world.clock, random: CountingRandomSource()),
            settings: JobMachine.Settings(sanityInterval: .zero), logger: world.log.logger)
        return (jobs, JobScheduler(jobs: jobs, executors: 2, logger: world.log.logger))
    }

    static func handover(_ delayID: String, timeout: Int64, identity: String = "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") -> DelayedLeaveHandover {
        DelayedLeaveHandover(
            serverName: "example.org", delayID: delayID, delayTimeout: timeout, roomAlias: "room", identity: identity,
            alternativeIdentities: ["@alice:example.org:DEVICE"])
    }

    /// The scheduler's poll period in milliseconds, the step the tests move the clock by.
    static let poll = JobScheduler.pollInterval.milliseconds

    /// One poll of the scheduler on the test's thread: claims and performs what is due now, again
    /// while that makes more work due now (a transition starts its send at once).
    static func runDueWork(_ jobs: DelayedLeaveJobs) {
        for _ in 0..<100 {
            let work = jobs.claimDueWork(limit: 8)
            if work.isEmpty { return }
            work.forEach(jobs.perform)
        }
        Issue.record("work kept becoming due without the clock moving")
    }

    /// Moves the manual clock in the scheduler's poll steps, polling after each, until `condition`
    /// holds: the manual time that took, or nil when `limit` passed first.
    static func advance(_ world: World, _ jobs: DelayedLeaveJobs, upTo limit: Int64, until condition: () -> Bool) -> Int64? {
        var elapsed: Int64 = 0
        while true {
            runDueWork(jobs)
            if condition() { return elapsed }
            guard elapsed < limit else { return nil }
            world.clock.advance(seconds: Double(Self.poll) / 1000)
            elapsed += Self.poll
        }
    }

    @Test func memberThatNeverConnectsGetsItsLeaveSentWhenTheWaitEnds() throws {
        let world = World()
        let (jobs, _) = Self.subsystem(world)
        #expect(jobs.accept(Self.handover("syd_never", timeout: 1000)) == nil)
        let elapsed = try #require(Self.advance(world, jobs, upTo: 4000) { !world.sends.isEmpty })
        // The initial wait is the delay timeout: not a poll before it, at most one poll after.
        #expect((1000...1000 + Self.poll).contains(elapsed), "sent after \(elapsed) ms")
        #expect(world.sends == ["http://hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_never/send"])
        #expect(world.restarts == 0)
        #expect(world.lookups >= 1, "the member was looked for on the SFU")

        let scheduled = try world.log.entry("Delayed leave job scheduled")
        #expect(scheduled.level == .info)
        // Contract §10.2: the delay ID is a logged field of the job's records.
        #expect(scheduled.metadata["delayId"] == "syd_never")
        #expect(scheduled.metadata["lkId"] == "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        let transition = try world.log.entry("Job state transition")
        #expect(transition.metadata["event"] == "\(JobEvent.waitingStateTimedOut.rawValue)")
        #expect(world.log.entries("Delayed leave event send finished").count == 1)
        world.log.expectNone(of: [Self.liveKitSecret] + world.sfuTokens)
    }

    @Test func connectedMemberIsRestartedAndLeaveIsSentWhenItGoes() throws {
        let world = World()
        let (jobs, _) = Self.subsystem(world)
        #expect(jobs.accept(Self.handover("syd_joined", timeout: 1500)) == nil)
        jobs.apply(.participantConnected, room: "room", identity: "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        // Restarted at once…
        Self.runDueWork(jobs)
        #expect(world.restarts == 1)
        // …and again at 80 % of the timeout.
        let again = try #require(Self.advance(world, jobs, upTo: 4000) { world.restarts >= 2 })
        #expect((1200...1200 + Self.poll).contains(again), "restarted again after \(again) ms")
        #expect(world.restarts == 2)
        #expect(world.sends.isEmpty)
        // Webhooks for the legacy identity reach the same job; the send follows at once.
        jobs.apply(.participantConnectionAborted, room: "room", identity: "@alice:example.org:DEVICE")
        #expect(Self.advance(world, jobs, upTo: 0) { world.sends.count == 1 } == 0)
        #expect(world.sends == ["http://hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_joined/send"])
        #expect(world.log.entries("Job state transition").compactMap { $0.metadata["to"]?.description } == ["Connected", "Disconnected"])
        world.log.expectNone(of: [Self.liveKitSecret] + world.sfuTokens)
    }

    @Test func presenceFoundByLookupUnderTheLegacyIdentityKeepsRestarting() throws {
        let world = World()
        world.script.present.withLock { $0.insert("@alice:example.org:DEVICE") }
        let (jobs, _) = Self.subsystem(world)
        #expect(jobs.accept(Self.handover("syd_legacy", timeout: 1000)) == nil)
        // Found at the first lookup, restarted at once, then every 800 ms.
        let third = try #require(Self.advance(world, jobs, upTo: 4000) { world.restarts >= 3 })
        #expect((1600...1600 + 2 * Self.poll).contains(third), "third restart after \(third) ms")
        #expect(world.sends.isEmpty, "the member is connected under its legacy identity")
        #expect(world.log.entries("Job state transition").compactMap { $0.metadata["event"]?.description } == [JobEvent.participantLookupSuccessful.rawValue])
    }

    @Test func vanishedDelayedEventStopsTheJobWithoutSend() throws {
        let world = World()
        world.script.restartStatus.withLock { $0 = 404 }
        let store = InMemoryJobStore()
        let (jobs, _) = Self.subsystem(world, store: store)
        #expect(jobs.accept(Self.handover("syd_gone", timeout: 5000)) == nil)
        jobs.apply(.participantConnected, room: "room", identity: "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        Self.runDueWork(jobs)
        #expect(try store.allRecords().isEmpty)
        #expect(world.restarts == 1)
        #expect(world.sends.isEmpty)
        #expect(world.log.entries("Job state transition").compactMap { $0.metadata["to"]?.description } == ["Connected", "Aborted"])
        // Nothing left to do, however long the clock runs.
        let calls = world.http.requests.count
        #expect(Self.advance(world, jobs, upTo: 10_000) { world.http.requests.count > calls } == nil)
    }

    @Test func shutdownRefusesNewJobs() {
        let (jobs, _) = Self.subsystem(World())
        jobs.beginShutdown()
        #expect(jobs.accept(Self.handover("syd_late", timeout: 1000)) == .shuttingDown)
    }

    @Test func coldStartPurgesExpiredJobsWithoutCalls() throws {
        let world = World()
        let store = InMemoryJobStore()
        let (jobs, scheduler) = Self.subsystem(world, store: store)
        #expect(jobs.accept(Self.handover("syd_expired", timeout: 500)) == nil)
        #expect(jobs.accept(Self.handover("syd_alive", timeout: 5000, identity: "hashed-identity-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")) == nil)
        world.clock.advance(seconds: 0.6)
        try scheduler.recoverIfColdStart()
        #expect(try store.allRecords().compactMap { try? $0.job.get().delayID } == ["syd_alive"])
        #expect(world.http.requests.isEmpty)
        #expect(try store.newestHeartbeat() == world.now)
        let recovered = try world.log.entry("Recovered stored jobs after a cold start")
        #expect(recovered.metadata["kept"] == "1")
        #expect(recovered.metadata["purged"] == "1")
    }

    /// The real dispatcher and executor threads, on the manual clock: nothing is sent before the
    /// clock passes the wait; once it has, the scheduler's own polling sends the leave.
    @Test func schedulerThreadsFollowTheManualClock() throws {
        let world = World()
        let store = InMemoryJobStore()
        let (jobs, scheduler) = Self.subsystem(world, store: store)
        #expect(jobs.accept(Self.handover("syd_threads", timeout: 1000)) == nil)
        let acceptedAt = world.now
        scheduler.start()
        defer { scheduler.stop() }
        world.clock.advance(seconds: 1)
        // Waits for the event, not for time: bounded only so a broken scheduler fails instead of hanging.
        #expect(world.sent.wait(timeout: .seconds(30)))
        #expect(world.sends == ["http://hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_threads/send"])
        #expect(world.restarts == 0)
        // Written by the dispatcher at its first poll, on the manual clock before or after the move.
        let heartbeat = try store.newestHeartbeat()
        #expect(heartbeat == acceptedAt || heartbeat == acceptedAt + 1000)
    }
}
