import Glibc
import Logging
import Synchronization
import Testing

@testable import LKJWTLogic

/// The jobs subsystem end to end in one process: real scheduler threads and clock, an in-memory
/// store, and a scripted SFU and homeserver behind the HTTP client.
struct DelayedLeaveJobsTests {
    /// What the fake SFU and homeserver answer; changed by tests while the scheduler runs.
    final class Script: Sendable {
        let present = Mutex<Set<String>>([])
        let restartStatus = Mutex(200)
    }

    final class World: Sendable {
        let script = Script()
        let http: ScriptedHTTPClient

        init() {
            let script = self.script
            http = ScriptedHTTPClient { request throws(OutboundError) in
                if request.url.hasSuffix("/GetParticipant") {
                    // The body ends with the identity asked for (protobuf field 2).
                    let body = String(decoding: request.body, as: UTF8.self)
                    let here = script.present.withLock { set in set.contains { body.hasSuffix($0) } }
                    return here ? OutboundResponse(status: 200) : .json(404, #"{"code":"not_found","msg":"participant not found"}"#)
                }
                if request.url.hasSuffix("/restart") { return .json(HTTPStatus(script.restartStatus.withLock { $0 }), "{}") }
                if request.url.hasSuffix("/send") { return .json(200, "{}") }
                return .json(404, "{}")
            }
        }

        var sends: [String] { http.requests.filter { $0.url.hasSuffix("/send") }.map(\.url) }
        var restarts: Int { http.requests.filter { $0.url.hasSuffix("/restart") }.count }
    }

    static func subsystem(_ world: World, store: any JobStore = InMemoryJobStore()) -> (DelayedLeaveJobs, JobScheduler) {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let jobs = DelayedLeaveJobs(
            dependencies: .init(
                store: store,
                clientServerAPI: ClientServerAPIResolver(
                    overrides: CSAPIURLOverrides(["example.org": "http://hs.test"]), http: world.http, clock: RealTimeClock()),
                roomService: RoomServiceClient(liveKitURL: "ws://sfu.test", apiKey: "k", apiSecret: "s", http: world.http, clock: RealTimeClock()),
                delayedEvents: DelayedEventClient(http: world.http, clock: RealTimeClock()),
                clock: RealTimeClock(), random: GeneratorRandomSource()),
            settings: JobMachine.Settings(sanityInterval: .zero), logger: logger)
        return (jobs, JobScheduler(jobs: jobs, executors: 2, logger: logger))
    }

    static func handover(_ delayID: String, timeout: Int64, identity: String = "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") -> DelayedLeaveHandover {
        DelayedLeaveHandover(
            serverName: "example.org", delayID: delayID, delayTimeout: timeout, roomAlias: "room", identity: identity,
            alternativeIdentities: ["@alice:example.org:DEVICE"])
    }

    static func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Deadline(after: .milliseconds(Int64(seconds * 1000)))
        while !deadline.hasPassed {
            if condition() { return true }
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&pause, nil)
        }
        return condition()
    }

    @Test func memberThatNeverConnectsGetsItsLeaveSent() {
        let world = World()
        let (jobs, scheduler) = Self.subsystem(world)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(jobs.accept(Self.handover("syd_never", timeout: 1000)) == nil)
        #expect(Self.wait(seconds: 4) { !world.sends.isEmpty })
        #expect(world.sends == ["http://hs.test/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_never/send"])
        #expect(world.restarts == 0)
    }

    @Test func connectedMemberIsRestartedAndLeaveIsSentWhenItGoes() {
        let world = World()
        let (jobs, scheduler) = Self.subsystem(world)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(jobs.accept(Self.handover("syd_joined", timeout: 1500)) == nil)
        jobs.apply(.participantConnected, room: "room", identity: "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        // Restarted at once and again at 80 % of the timeout.
        #expect(Self.wait(seconds: 4) { world.restarts >= 2 })
        #expect(world.sends.isEmpty)
        // Webhooks for the legacy identity reach the same job.
        jobs.apply(.participantConnectionAborted, room: "room", identity: "@alice:example.org:DEVICE")
        #expect(Self.wait(seconds: 3) { world.sends.count == 1 })
    }

    @Test func presenceFoundByLookupUnderTheLegacyIdentityKeepsRestarting() {
        let world = World()
        world.script.present.withLock { $0.insert("@alice:example.org:DEVICE") }
        let (jobs, scheduler) = Self.subsystem(world)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(jobs.accept(Self.handover("syd_legacy", timeout: 1000)) == nil)
        #expect(Self.wait(seconds: 4) { world.restarts >= 3 })
        #expect(world.sends.isEmpty, "the member is connected under its legacy identity")
    }

    @Test func vanishedDelayedEventStopsTheJobWithoutSend() {
        let world = World()
        world.script.restartStatus.withLock { $0 = 404 }
        let store = InMemoryJobStore()
        let (jobs, scheduler) = Self.subsystem(world, store: store)
        scheduler.start()
        defer { scheduler.stop() }
        #expect(jobs.accept(Self.handover("syd_gone", timeout: 5000)) == nil)
        jobs.apply(.participantConnected, room: "room", identity: "hashed-identity-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        #expect(Self.wait(seconds: 3) { (try? store.allRecords().isEmpty) == true })
        #expect(world.restarts == 1)
        #expect(world.sends.isEmpty)
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
        var pause = timespec(tv_sec: 0, tv_nsec: 600_000_000)
        nanosleep(&pause, nil)
        try scheduler.recoverIfColdStart()
        #expect(try store.allRecords().isEmpty)
        #expect(world.http.requests.isEmpty)
        #expect(try store.newestHeartbeat() != nil)
    }
}
