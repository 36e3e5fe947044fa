import Glibc
import FoundationEssentials
import Logging
import Synchronization

/// The delayed-leave jobs of one process: creates them for the token endpoints, applies webhooks,
/// and performs claimed work for the scheduler. All state lives in the store (contract §8.10).
public final class DelayedLeaveJobs: DelayedLeaveDelegation, Sendable {
    public struct Dependencies: Sendable {
        public var store: any JobStore
        public var clientServerAPI: ClientServerAPIResolver
        public var roomService: RoomServiceClient
        public var delayedEvents: DelayedEventClient
        public var clock: any WallClock
        public var random: any RandomSource

        public init(
            store: any JobStore, clientServerAPI: ClientServerAPIResolver, roomService: RoomServiceClient, delayedEvents: DelayedEventClient,
            clock: any WallClock, random: any RandomSource
        ) {
            self.store = store
            self.clientServerAPI = clientServerAPI
            self.roomService = roomService
            self.delayedEvents = delayedEvents
            self.clock = clock
            self.random = random
        }
    }

    let dependencies: Dependencies
    let settings: JobMachine.Settings
    let logger: Logger
    /// This process, as claims name it.
    public let owner: String
    private let shuttingDown = Mutex(false)
    private let wakeHandler = Mutex<(@Sendable () -> Void)?>(nil)

    public init(dependencies: Dependencies, settings: JobMachine.Settings, logger: Logger) {
        self.dependencies = dependencies
        self.settings = settings
        self.logger = logger
        self.owner = "\(getpid())-" + Base64.url(dependencies.random.bytes(6))
    }

    public var nowMilliseconds: Int64 { dependencies.clock.now().unixMilliseconds }

    /// Called when work became due in this process, so the local scheduler need not wait for its next poll.
    func onWork(_ handler: @escaping @Sendable () -> Void) {
        wakeHandler.withLock { $0 = handler }
    }

    private func wake() {
        wakeHandler.withLock { $0 }?()
    }

    /// New jobs are refused once shutdown began (§3.4 step 13).
    public func beginShutdown() {
        shuttingDown.withLock { $0 = true }
    }

    // MARK: DelayedLeaveDelegation

    public func clientServerAPIBaseURL(for serverName: String) -> String? {
        switch dependencies.clientServerAPI.resolve(serverName) {
        case .resolved(let baseURL): return baseURL
        case .failed(let reason):
            logger.warning("Failed to resolve URL of Client-Server API", metadata: ["server name": .untrusted(serverName), "err": .untrusted(reason)])
            return nil
        }
    }

    public func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal? {
        if shuttingDown.withLock({ $0 }) { return .shuttingDown }
        let now = nowMilliseconds
        let jobID = JobID.make(microseconds: now.saturatingMultiplied(by: 1000), random: dependencies.random)
        let job: DelayedLeaveJob
        switch JobMachine.newJob(handover, jobID: jobID, now: now) {
        case .success(let created): job = created
        case .failure(let error): return error
        }
        let creation: JobCreation
        do {
            creation = try dependencies.store.create(job, quota: handover.quota)
        } catch {
            logger.error("Could not store delayed leave job", metadata: ["room": .untrusted(job.key.room), "lkId": .untrusted(job.key.identity), "err": .untrusted("\(error)")])
            return .notStored
        }
        switch creation {
        case .created:
            break
        case .replaced(let replaced):
            logger.info("replacing existing job", metadata: ["room": .untrusted(job.key.room), "lkId": .untrusted(job.key.identity), "oldJobId": .untrusted(replaced), "newJobId": .untrusted(jobID)])
        case .replacedUnparsable(let reason):
            logger.warning("Replacing an unparsable stored job", metadata: [
                "room": .untrusted(job.key.room), "lkId": .untrusted(job.key.identity), "newJobId": .untrusted(jobID), "err": .untrusted(reason),
            ])
        case .refused(let cap):
            logger.warning("Too many delayed leave events", metadata: [
                "matrixId": .untrusted(job.ownerUserID), "MatrixServerName": .untrusted(job.serverName), "cap": "\(cap.rawValue)",
                "limit": "\((cap == .user ? handover.quota.perUser : handover.quota.perServer) ?? 0)",
            ])
            return .tooManyDelayedLeaveEvents
        }
        logger.info("Delayed leave job scheduled", metadata: [
            "room": .untrusted(job.key.room), "lkId": .untrusted(job.key.identity), "delayId": .untrusted(job.delayID), "MatrixServerName": .untrusted(job.serverName), "jobId": .untrusted(jobID),
        ])
        wake()
        return nil
    }

    // MARK: Webhooks

    /// Applies a verified webhook event to the job watching that participant, if any.
    public func apply(_ event: JobEvent, room: String, identity: String) {
        do {
            guard let key = try dependencies.store.key(room: room, identity: identity) else {
                logger.debug("Webhook for a participant without a job", metadata: ["room": .untrusted(room), "lkId": .untrusted(identity), "event": "\(event.rawValue)"])
                return
            }
            let now = nowMilliseconds
            let (transition, job) = try dependencies.store.update(key) { job -> (JobTransition?, DelayedLeaveJob?) in
                let before = job
                return (JobMachine.apply(event, to: &job, now: now), before)
            }
            guard let transition, let job else {
                logger.debug("Event ignored", metadata: ["room": .untrusted(room), "lkId": .untrusted(identity), "event": "\(event.rawValue)"])
                return
            }
            log([.transition(transition)] + (transition.to == .aborted ? [.done(reason: "aborted after \(event.rawValue)")] : []), job: job)
            wake()
        } catch {
            logger.error("Could not apply webhook to job", metadata: ["room": .untrusted(room), "lkId": .untrusted(identity), "err": .untrusted("\(error)")])
        }
    }

    // MARK: Scheduler work

    /// Fires due timers and claims due attempts of up to `limit` jobs.
    func claimDueWork(limit: Int) -> [JobMachine.Work] {
        let now = nowMilliseconds
        var claimed: [JobMachine.Work] = []
        do {
            // Sibling processes see the same due keys; starting at different ones spreads the claims.
            for key in try dependencies.store.dueKeys(now: now, limit: limit * 2).shuffled().prefix(limit) {
                let claim: (work: [JobMachine.Work], notes: [JobMachine.Note], job: DelayedLeaveJob?)
                do {
                    claim = try dependencies.store.update(key) { job -> ([JobMachine.Work], [JobMachine.Note], DelayedLeaveJob?) in
                        let before = job
                        let result = JobMachine.claimDueWork(&job, now: now, owner: owner, settings: settings)
                        return (result.work, result.notes, before)
                    }
                } catch where error.kind == .unparsableRecord {
                    // Skipped, not deleted: the store took it off the due index, so this is logged once.
                    logger.warning("Skipping unparsable stored job", metadata: ["identity": .untrusted(key.identity), "room": .untrusted(key.room), "err": .untrusted(error.message)])
                    continue
                }
                if let job = claim.job { log(claim.notes, job: job) }
                claimed += claim.work
            }
        } catch {
            logger.error("Job store error while claiming work", metadata: ["err": .untrusted("\(error)")])
        }
        return claimed
    }

    /// One attempt: the I/O outside any store transaction, then the result written back.
    func perform(_ work: JobMachine.Work) {
        let outcome: JobMachine.Outcome
        switch work.kind {
        case .lookup:
            outcome = .presence(presence(of: work))
        case .restart, .send:
            switch dependencies.clientServerAPI.resolve(work.serverName) {
            case .failed(let reason):
                logger.warning("Failed to resolve URL of Client-Server API", metadata: ["server name": .untrusted(work.serverName), "err": .untrusted(reason)])
                outcome = .clientServerAPIUnresolvable(reason)
            case .resolved(let baseURL):
                outcome = .delayedEvent(dependencies.delayedEvents.perform(work.kind == .restart ? .restart : .send, delayID: work.delayID, baseURL: baseURL, serverName: work.serverName))
            }
        }
        complete(work, outcome: outcome)
    }

    func complete(_ work: JobMachine.Work, outcome: JobMachine.Outcome) {
        let now = nowMilliseconds
        do {
            let (notes, job) = try dependencies.store.update(work.key) { job -> ([JobMachine.Note], DelayedLeaveJob?) in
                let before = job
                return (JobMachine.complete(&job, work: work, outcome: outcome, now: now, random: dependencies.random, settings: settings), before)
            }
            if let job { log(notes, job: job, work: work) }
            if notes.contains(where: { if case .transition = $0 { return true } else { return false } }) { wake() }
        } catch {
            // The claim expires and another attempt follows; nothing is lost.
            logger.error("Job store error while recording a result", metadata: ["room": .untrusted(work.key.room), "lkId": .untrusted(work.key.identity), "err": .untrusted("\(error)")])
        }
    }

    /// Releases claims on work this process will not perform (shutdown), so others take it at once.
    func release(_ work: JobMachine.Work) {
        do {
            try dependencies.store.update(work.key) { job in
                guard job?.jobID == work.jobID else { return }
                for path in [\DelayedLeaveJob.lookup, \DelayedLeaveJob.restart, \DelayedLeaveJob.send] where job?[keyPath: path]?.claim == work.claim {
                    job?[keyPath: path]?.claim = nil
                }
            }
        } catch {
            // The claim then lapses with its lease, or with this process's liveness record.
            logger.warning("Could not hand a claim back to the store", metadata: ["room": .untrusted(work.key.room), "lkId": .untrusted(work.key.identity), "err": .untrusted("\(error)")])
        }
    }

    /// Present if the member is there under any of its identities; absent only if absent under all.
    private func presence(of work: JobMachine.Work) -> ParticipantPresence {
        var unknown: String?
        for identity in work.identities {
            switch dependencies.roomService.participantPresence(room: work.key.room, identity: identity) {
            case .present: return .present
            case .absent: continue
            case .unknown(let reason): unknown = reason
            }
        }
        return unknown.map { .unknown($0) } ?? .absent
    }

    private func log(_ notes: [JobMachine.Note], job: DelayedLeaveJob, work: JobMachine.Work? = nil) {
        let metadata: Logger.Metadata = [
            "room": .untrusted(job.key.room), "lkId": .untrusted(job.key.identity), "delayId": .untrusted(job.delayID), "jobId": .untrusted(job.jobID),
        ]
        for note in notes {
            switch note {
            case .transition(let transition):
                logger.info("Job state transition", metadata: metadata.merging([
                    "from": "\(transition.from.rawValue)", "to": "\(transition.to.rawValue)", "event": "\(transition.event.rawValue)",
                ]) { $1 })
            case .done(let reason):
                logger.info("job done", metadata: metadata.merging(["reason": .untrusted(reason)]) { $1 })
            case .lookupGaveUp:
                logger.warning("Participant never seen on the SFU; lookup stopped", metadata: metadata)
            case .sanityCheckUnknown(let reason):
                logger.warning("Participant sanity check failed", metadata: metadata.merging(["err": .untrusted(reason)]) { $1 })
            case .restarted:
                logger.debug("Delayed event restarted", metadata: metadata)
            case .restartRetry(let reason):
                logger.warning("Delayed event restart failed", metadata: metadata.merging(["err": .untrusted(reason)]) { $1 })
            case .sendFinished(let how):
                logger.info("Delayed leave event send finished", metadata: metadata.merging(["status": "\(how)"]) { $1 })
            case .sendAbandoned(let reason):
                logger.warning("Gave up sending the delayed leave event", metadata: metadata.merging(["err": .untrusted(reason)]) { $1 })
            case .discarded:
                logger.debug("Late result discarded", metadata: metadata.merging(["work": "\(work?.kind.rawValue ?? "")"]) { $1 })
            }
        }
    }
}
