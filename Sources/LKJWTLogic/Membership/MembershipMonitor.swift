import Logging
import Synchronization

/// The membership monitor (AS-MODE.md B4): tracks the participants whose tokens came from the
/// application-service endpoints, and removes from the call those who are no longer joined to the
/// Matrix room. Every long-lived process runs one thread of it; the periodic sweep is claimed through
/// a lease in the job store, so the deployment sweeps once per interval. The check at a
/// `participant_joined` runs in the process that received the webhook.
public final class MembershipMonitor: Sendable {
    public struct Dependencies: Sendable {
        public var store: any JobStore
        public var roomService: RoomServiceClient
        public var homeserver: any RoomMembershipSource
        public var clock: any WallClock

        public init(store: any JobStore, roomService: RoomServiceClient, homeserver: any RoomMembershipSource, clock: any WallClock) {
            self.store = store
            self.roomService = roomService
            self.homeserver = homeserver
            self.clock = clock
        }
    }

    /// Longer than any sweep takes (thousands of sequential SFU and homeserver calls), so that no
    /// second sweep starts beside a slow one; a sweeper that dies is replaced at once all the same,
    /// through its claim-owner record (contract §8.10 rule 4).
    static let sweepLease: Int64 = 600_000
    /// The loop looks at the lease at least this often, so a lapsed sweeper is noticed.
    static let longestWait: Int64 = 1_000

    private struct State {
        var running = false
        var thread: PosixThread?
        /// Participants whose `participant_joined` arrived here, to check at once.
        var checks: [JobKey] = []
    }

    let dependencies: Dependencies
    /// Milliseconds between sweeps (> 0).
    let interval: Int64
    /// This process, as claims name it (the job scheduler keeps its liveness record).
    let owner: String
    let logger: Logger
    private let state = Mutex(State())
    private let wake = Semaphore()

    public init(dependencies: Dependencies, intervalSeconds: Int, owner: String, logger: Logger) {
        self.dependencies = dependencies
        self.interval = Int64(max(1, min(intervalSeconds, 86_400 * 365))) * 1000
        self.owner = owner
        self.logger = logger
    }

    var now: Int64 { dependencies.clock.now().unixMilliseconds }
    var store: any JobStore { dependencies.store }

    // MARK: Tracking

    /// A token for this participant was issued by an application-service endpoint: track it for the
    /// token's lifetime. The endpoint has just checked the membership, so a removal still owed is void.
    public func track(matrixRoomID: String, matrixUserID: String, liveKitRoom: String, liveKitIdentity: String) {
        let now = now
        do {
            try store.updateParticipant(JobKey(room: liveKitRoom, identity: liveKitIdentity)) { participant in
                participant = TrackedParticipant(
                    matrixRoomID: matrixRoomID, matrixUserID: matrixUserID, liveKitRoom: liveKitRoom, liveKitIdentity: liveKitIdentity,
                    registeredAt: now, connected: participant?.connected ?? false)
            }
        } catch {
            // The token is issued anyway: a store outage must not stop calls; the sweep cannot see this one.
            logger.error("Could not track participant for the membership monitor", metadata: [
                "matrixId": .untrusted(matrixUserID), "matrixRoom": .untrusted(matrixRoomID), "room": .untrusted(liveKitRoom),
                "lkId": .untrusted(liveKitIdentity), "err": .untrusted("\(error)"),
            ])
        }
    }

    /// A verified webhook: keeps `connected` current, and checks a tracked participant's membership as
    /// soon as it joins the SFU (MSC4195's re-check; a user removed earlier cannot come back with the
    /// same token). Never waits for the homeserver: the check runs on the monitor's thread.
    public func apply(_ event: WebhookEvent) {
        do {
            switch event.event {
            case "participant_joined":
                let tracked = try store.updateParticipant(JobKey(room: event.room, identity: event.participantIdentity)) { participant -> Bool in
                    guard participant != nil else { return false }
                    participant?.connected = true
                    return true
                }
                guard tracked else { return }
                // Without the thread (CGI, or it could not start) the next sweep of another process checks it.
                let queued = state.withLock { state -> Bool in
                    guard state.running else { return false }
                    state.checks.append(JobKey(room: event.room, identity: event.participantIdentity))
                    return true
                }
                if queued { wake.signal() }
            case "participant_left", "participant_connection_aborted":
                let now = now
                try store.updateParticipant(JobKey(room: event.room, identity: event.participantIdentity)) { participant in
                    Self.leave(&participant, now: now)
                }
            case "room_finished":
                let now = now
                for participant in try store.trackedParticipants() where participant.liveKitRoom == event.room {
                    try store.updateParticipant(participant.key) { Self.leave(&$0, now: now) }
                }
            default:
                return
            }
        } catch {
            logger.error("Could not apply webhook to tracked participants", metadata: [
                "event": .untrusted(event.event), "room": .untrusted(event.room), "lkId": .untrusted(event.participantIdentity), "err": .untrusted("\(error)"),
            ])
        }
    }

    /// Off the SFU: a removal it owed is moot; once its token expired there is nothing left to watch.
    static func leave(_ participant: inout TrackedParticipant?, now: Int64) {
        guard participant != nil else { return }
        participant?.connected = false
        participant?.pendingRemoval = nil
        if participant?.canBeForgotten(now: now) == true { participant = nil }
    }

    // MARK: Thread

    public func start() {
        state.withLock { $0.running = true }
        let thread = PosixThread.start { [self] in run() }
        if thread == nil {
            state.withLock { $0.running = false }
            logger.error("Could not start the membership monitor thread; participants are checked only by other processes")
        } else {
            logger.info("Membership monitor started", metadata: ["interval": "\(interval / 1000)s"])
        }
        state.withLock { $0.thread = thread }
    }

    public func stop() {
        let thread = state.withLock { state -> PosixThread? in
            state.running = false
            return state.thread
        }
        wake.signal()
        thread?.join()
    }

    private func run() {
        while state.withLock({ $0.running }) {
            let checks = state.withLock { state -> [JobKey] in
                defer { state.checks.removeAll() }
                return state.checks
            }
            if !checks.isEmpty { checkJoined(checks) }
            let retryAt = sweepIfDue()
            let wait = min(max(retryAt.saturatingSubtracting(now), 10), Self.longestWait)
            _ = wake.wait(timeout: .milliseconds(wait))
        }
    }

    /// Claims and runs the deployment's sweep if it is due; returns when to look again.
    @discardableResult
    func sweepIfDue() -> Int64 {
        let started = now
        let claim: MembershipSweepLease.Claim
        do {
            let gone = try store.lapsedOwners(now: started, except: owner)
            claim = try store.claimMembershipSweep(owner: owner, now: started, interval: interval, lease: Self.sweepLease, goneOwners: gone)
        } catch {
            logger.error("Could not claim the membership sweep", metadata: ["err": .untrusted("\(error)")])
            return started.saturatingAdding(Self.longestWait)
        }
        guard case .claimed = claim else {
            if case .notDue(let retryAt) = claim { return retryAt }
            return started.saturatingAdding(Self.longestWait)
        }
        sweep()
        do {
            try store.releaseMembershipSweep(owner: owner)
        } catch {
            logger.warning("Could not release the membership sweep lease; it expires by itself", metadata: ["err": .untrusted("\(error)")])
        }
        return started.saturatingAdding(interval)
    }
}
