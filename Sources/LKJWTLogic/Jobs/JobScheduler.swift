import Logging
import Synchronization

/// The background scheduler every long-lived process runs (contract §8.10): one dispatcher thread
/// claims due work from the store, a few executor threads perform it, taking destinations in turn
/// with at most half of them on one destination (so one slow homeserver does not hold up every
/// other job, §13.3), and a heartbeat tells other processes a scheduler is alive.
public final class JobScheduler: Sendable {
    /// Due work starts within this of its due time (the contract asks for 250 ms at most).
    static let pollInterval: Int64 = 50
    static let heartbeatInterval: Int64 = 5_000
    /// A heartbeat older than this means no scheduler is alive (§8.11).
    public static let heartbeatTimeout: Int64 = 15_000

    /// Claimed work held at most, in all lanes: a stalling server's due work waits here rather than
    /// hide other servers' due work from the store's soonest-first query.
    static let maximumQueued = 4_096

    private struct State {
        var running = false
        var queue: FairWorkQueue
        var threads: [PosixThread] = []
        var lastHeartbeat: Int64 = 0
    }

    let jobs: DelayedLeaveJobs
    let executorCount: Int
    let logger: Logger
    private let state: Mutex<State>
    private let dispatcherWake = Semaphore()
    private let workAvailable = Semaphore()

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
                    logger.warning("Skipping unparsable stored job", metadata: ["identity": "\(key.identity)", "room": "\(key.room)", "err": "\(error)"])
                case .success(let job):
                    let newID = JobID.make(microseconds: now * 1000, random: jobs.dependencies.random)
                    switch JobMachine.recover(job, now: now, newJobID: newID) {
                    case .delete(let reason):
                        logger.info("\(reason)", metadata: ["lkId": "\(job.key.identity)", "room": "\(job.key.room)", "jobId": "\(job.jobID)"])
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
        guard let heartbeat else { return true }
        return jobs.nowMilliseconds - heartbeat > Self.heartbeatTimeout
    }

    public func start() {
        jobs.onWork { [dispatcherWake] in dispatcherWake.signal() }
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
            dispatcherWake.wait(milliseconds: Self.pollInterval)
        }
    }

    private func beat() {
        let now = jobs.nowMilliseconds
        guard state.withLock({ now - $0.lastHeartbeat >= Self.heartbeatInterval }) else { return }
        do {
            try jobs.dependencies.store.writeHeartbeat(now)
            state.withLock { $0.lastHeartbeat = now }
        } catch {
            logger.error("Could not write the scheduler heartbeat", metadata: ["err": "\(error)"])
        }
    }

    private func execute() {
        while true {
            workAvailable.wait(milliseconds: 250)
            let now = jobs.nowMilliseconds
            // Half the lease still left when the attempt starts: it ends before the claim could be taken over.
            let (work, stale, running) = state.withLock { state in
                let (work, stale) = state.queue.next(now: now, leaseLeft: jobs.settings.lease / 2)
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
