import Logging
import Synchronization

/// The background scheduler every long-lived process runs (contract §8.10): one dispatcher thread
/// claims due work from the store, a few executor threads perform it, taking destinations in turn
/// with at most half of them on one destination (so one slow homeserver does not hold up every
/// other job, §13.3), and a heartbeat tells other processes a scheduler is alive. A liveness
/// thread keeps this process's claim-owner record fresh and takes over the claims of owners whose
/// record lapsed (§8.10 rule 4, rev. 2).
public final class JobScheduler: Sendable {
    /// Due work starts within this of its due time (the contract asks for 250 ms at most).
    static let pollInterval: Duration = .milliseconds(50)
    static let heartbeatInterval: Duration = .seconds(5)
    /// A heartbeat older than this means no scheduler is alive (§8.11).
    public static let heartbeatTimeout: Duration = .seconds(15)
    /// The owner record is renewed this often (one store write)…
    static let livenessRenewalInterval: Duration = .milliseconds(500)
    /// …and valid this long: a renewal may be 700 ms late before others think us gone, and a dead
    /// owner's claims are taken within this plus one check interval (the contract allows 1.5 s).
    static let livenessValidity: Duration = .milliseconds(1_200)
    /// How often other owners' records are read for lapses (a read; the scan follows only on a lapse).
    static let livenessCheckInterval: Duration = .milliseconds(100)

    /// Claimed work held at most, in all lanes: a stalling server's due work waits here rather than
    /// hide other servers' due work from the store's soonest-first query.
    static let maximumQueued = 4_096

    private struct State {
        var running = false
        var queue: FairWorkQueue
        var threads: [PosixThread] = []
        var lastHeartbeat: Int64 = 0
        var livenessRunning = false
        var livenessThread: PosixThread?
        var lastRenewal: Int64 = 0
    }

    let jobs: DelayedLeaveJobs
    let executorCount: Int
    let logger: Logger
    private let state: Mutex<State>
    private let dispatcherWake = Semaphore()
    private let workAvailable = Semaphore()
    private let livenessWake = Semaphore()

    public init(jobs: DelayedLeaveJobs, executors: Int = 4, logger: Logger) {
        self.jobs = jobs
        self.executorCount = executors
        self.logger = logger
        self.state = Mutex(State(queue: FairWorkQueue(perLaneLimit: executors / 2)))
    }

    /// Cold start (§8.11): when no scheduler has been alive for 15 s, the first process to get the
    /// store's recovery lock purges expired jobs and resets the others; later ones find a fresh heartbeat.
    public func recoverIfColdStart() throws(JobStoreError) {
        let store = jobs.dependencies.store
        guard isCold(try store.newestHeartbeat()) else { return }
        try store.withRecoveryLock { () throws(JobStoreError) in
            guard isCold(try store.newestHeartbeat()) else { return }
            let now = jobs.nowMilliseconds
            var kept = 0
            var purged = 0
            for (key, parsed) in try store.allRecords() {
                switch parsed {
                case .failure(let error):
                    logger.warning("Skipping unparsable stored job", metadata: ["identity": .untrusted(key.identity), "room": .untrusted(key.room), "err": .untrusted("\(error)")])
                case .success(let job):
                    let newID = JobID.make(microseconds: now.saturatingMultiplied(by: 1000), random: jobs.dependencies.random)
                    switch JobMachine.recover(job, now: now, newJobID: newID) {
                    case .delete(let reason):
                        logger.info("\(reason)", metadata: ["lkId": .untrusted(job.key.identity), "room": .untrusted(job.key.room), "jobId": .untrusted(job.jobID)])
                        try store.update(key) { $0 = nil }
                        purged += 1
                    case .keep(let recovered):
                        try store.update(key) { $0 = recovered }
                        kept += 1
                    }
                }
            }
            try store.writeHeartbeat(now)
            state.withLock { $0.lastHeartbeat = now }
            logger.info("Recovered stored jobs after a cold start", metadata: ["kept": "\(kept)", "purged": "\(purged)"])
        }
    }

    private func isCold(_ heartbeat: Int64?) -> Bool {
        !Self.isAlive(heartbeat: heartbeat, now: jobs.nowMilliseconds)
    }

    /// Whether the store's newest heartbeat says a scheduler is alive at `now` (Unix milliseconds):
    /// the cold-start rule (§8.11), and what a CGI request warns about (§8.10 rule 8).
    public static func isAlive(heartbeat: Int64?, now: Int64) -> Bool {
        guard let heartbeat else { return false }
        // The heartbeat is a stored number: any value, a corrupt one included, must compare safely.
        return now.saturatingSubtracting(heartbeat) <= heartbeatTimeout.milliseconds
    }

    /// Registers this process as a claim owner, purges the jobs that expired while nobody handled them
    /// (§8.11 rev. 2, warm or cold start alike), then starts claiming.
    public func start() {
        jobs.onWork { [dispatcherWake] in dispatcherWake.signal() }
        // Before the first claim: a claim without an owner record could only be taken after its lease.
        renewLiveness()
        purgeExpiredJobs()
        state.withLock { $0.livenessRunning = true }
        let liveness = PosixThread.start({ [self] in keepAlive() })
        if liveness == nil { logger.error("Could not start the claim liveness thread; claims of this process fall back to their lease") }
        state.withLock { $0.livenessThread = liveness }
        var threads: [PosixThread] = []
        state.withLock { $0.running = true }
        if let dispatcher = PosixThread.start({ [self] in dispatch() }) { threads.append(dispatcher) }
        for _ in 0..<executorCount {
            if let executor = PosixThread.start({ [self] in execute() }) { threads.append(executor) }
        }
        state.withLock { $0.threads = threads }
    }

    /// Stops claiming, hands queued claims back to the store for other processes, and waits for the
    /// attempts in progress.
    public func stop() {
        let (threads, queued) = state.withLock { state -> ([PosixThread], [JobMachine.Work]) in
            state.running = false
            return (state.threads, state.queue.removeAll())
        }
        dispatcherWake.signal()
        for _ in 0..<executorCount { workAvailable.signal() }
        for work in queued { jobs.release(work) }
        for thread in threads { thread.join() }
        // Attempts in progress kept our claims alive until now; nothing of ours is claimed any more.
        let liveness = state.withLock { state -> PosixThread? in
            state.livenessRunning = false
            return state.livenessThread
        }
        livenessWake.signal()
        liveness?.join()
        do {
            try jobs.dependencies.store.removeLiveness(of: jobs.owner, lapsedAt: nil)
        } catch {
            logger.warning("Could not remove this process's claim-owner record; it lapses by itself", metadata: ["err": "\(error)"])
        }
    }

    /// §8.11 rev. 2: expired jobs no live owner holds are deleted without any call.
    private func purgeExpiredJobs() {
        do {
            for job in try jobs.dependencies.store.purgeExpiredJobs(now: jobs.nowMilliseconds) {
                logger.info("skipping expired stored job", metadata: ["lkId": "\(job.key.identity)", "room": "\(job.key.room)", "jobId": "\(job.jobID)"])
            }
        } catch {
            logger.error("Could not purge expired stored jobs", metadata: ["err": "\(error)"])
        }
    }

    private func keepAlive() {
        while state.withLock({ $0.livenessRunning }) {
            if jobs.nowMilliseconds - state.withLock({ $0.lastRenewal }) >= Self.livenessRenewalInterval.milliseconds { renewLiveness() }
            takeOverLapsedClaims()
            _ = livenessWake.wait(timeout: Self.livenessCheckInterval)
        }
    }

    private func renewLiveness() {
        let now = jobs.nowMilliseconds
        do {
            try jobs.dependencies.store.renewLiveness(of: jobs.owner, expires: now + Self.livenessValidity.milliseconds)
            state.withLock { $0.lastRenewal = now }
        } catch {
            logger.error("Could not renew this process's claim-owner record", metadata: ["err": "\(error)"])
        }
    }

    /// Claims of owners whose record lapsed are released for any live worker to take at once.
    private func takeOverLapsedClaims() {
        let store = jobs.dependencies.store
        let now = jobs.nowMilliseconds
        do {
            let lapsed = try store.lapsedOwners(now: now, except: jobs.owner)
            guard !lapsed.isEmpty else { return }
            let takenOver = try store.releaseClaims(of: lapsed, lapsedAt: now)
            for (job, owners, kinds) in takenOver {
                logger.info("Taking over the claims of a gone worker", metadata: [
                    "room": "\(job.key.room)", "lkId": "\(job.key.identity)", "jobId": "\(job.jobID)",
                    "owner": "\(owners.sorted().joined(separator: ","))", "work": "\(kinds.map(\.rawValue).joined(separator: ","))",
                ])
            }
            logger.debug("Claim owners gone", metadata: ["owners": "\(lapsed.sorted().joined(separator: ","))"])
            if !takenOver.isEmpty { dispatcherWake.signal() }
        } catch {
            logger.error("Could not take over the claims of gone workers", metadata: ["err": "\(error)"])
        }
    }

    private var isRunning: Bool { state.withLock { $0.running } }

    private func dispatch() {
        while isRunning {
            beat()
            // Enough startable work for every executor, counting only lanes below their limit.
            let room = state.withLock { state in
                min(executorCount * 2 - state.queue.startable, Self.maximumQueued - state.queue.count)
            }
            if room > 0 {
                let work = jobs.claimDueWork(limit: room)
                if !work.isEmpty {
                    state.withLock { state in
                        for item in work { state.queue.add(item) }
                    }
                    for _ in work { workAvailable.signal() }
                    // More may be due right now (a burst of restarts): claim again without sleeping.
                    continue
                }
            }
            // Woken early by new jobs, webhooks and executors that freed queue room.
            dispatcherWake.wait(timeout: Self.pollInterval)
        }
    }

    private func beat() {
        let now = jobs.nowMilliseconds
        guard state.withLock({ now - $0.lastHeartbeat >= Self.heartbeatInterval.milliseconds }) else { return }
        do {
            try jobs.dependencies.store.writeHeartbeat(now)
            state.withLock { $0.lastHeartbeat = now }
        } catch {
            logger.error("Could not write the scheduler heartbeat", metadata: ["err": .untrusted("\(error)")])
        }
    }

    private func execute() {
        while true {
            workAvailable.wait(timeout: .milliseconds(250))
            let now = jobs.nowMilliseconds
            // Half the lease still left when the attempt starts: it ends before the claim could be taken over.
            let (work, stale, running) = state.withLock { state in
                let (work, stale) = state.queue.next(now: now, leaseLeft: jobs.settings.lease.milliseconds / 2)
                return (work, stale, state.running)
            }
            for item in stale { jobs.release(item) }
            if !stale.isEmpty { dispatcherWake.signal() }
            if let work {
                jobs.perform(work)
                state.withLock { $0.queue.finished(work) }
                // The lane may take its next work now.
                workAvailable.signal()
                dispatcherWake.signal()
            } else if !running {
                return
            }
        }
    }
}
