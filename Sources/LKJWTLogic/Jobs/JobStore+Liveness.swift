/// The store-wide steps of claim takeover (§8.10 rule 4, rev. 2) and of the start-up purge of
/// expired jobs (§8.11 rev. 2), built on the `JobStore` primitives so every store behaves alike.
extension JobStore {
    /// A job whose claims of gone owners were released.
    public typealias TakenOver = (job: DelayedLeaveJob, owners: Set<String>, kinds: [JobMachine.WorkKind])

    /// Owners whose liveness record has expired at `now`; `me` never counts (a late renewal of our
    /// own must not make us drop our own attempts).
    public func lapsedOwners(now: Int64, except me: String) throws(JobStoreError) -> Set<String> {
        Set(try livenessRecords().filter { $0.key != me && $0.value <= now }.keys)
    }

    /// Owners whose liveness record is still valid at `now`.
    func liveOwners(now: Int64) throws(JobStoreError) -> Set<String> {
        Set(try livenessRecords().filter { $0.value > now }.keys)
    }

    /// Releases every claim of the `lapsed` owners, then forgets those owners unless they renewed
    /// meanwhile. Reads every record, so callers do this only when some owner lapsed (a rare event:
    /// a process that stops gracefully removes its own record).
    public func releaseClaims(of lapsed: Set<String>, lapsedAt now: Int64) throws(JobStoreError) -> [TakenOver] {
        guard !lapsed.isEmpty else { return [] }
        var takenOver: [TakenOver] = []
        for (key, parsed) in try allRecords() {
            guard case .success(let seen) = parsed else { continue }
            let holders = Set([seen.lookup, seen.restart, seen.send].compactMap { $0?.claim?.owner }).intersection(lapsed)
            guard !holders.isEmpty else { continue }
            let (kinds, job) = try update(key) { job -> ([JobMachine.WorkKind], DelayedLeaveJob?) in
                (JobMachine.releaseClaims(&job, ofGoneOwners: lapsed), job)
            }
            if let job, !kinds.isEmpty { takenOver.append((job, holders, kinds)) }
        }
        // Only after every claim is released: a record removed too early would hide the rest for good.
        for owner in lapsed { try removeLiveness(of: owner, lapsedAt: now) }
        return takenOver
    }

    /// Deletes every job that expired while nobody handled it (`JobMachine.isExpired`), without any
    /// call; returns the deleted jobs.
    public func purgeExpiredJobs(now: Int64) throws(JobStoreError) -> [DelayedLeaveJob] {
        let live = try liveOwners(now: now)
        var purged: [DelayedLeaveJob] = []
        for (key, parsed) in try allRecords() {
            guard case .success(let seen) = parsed, JobMachine.isExpired(seen, now: now, liveOwners: live) else { continue }
            // Re-checked inside the update: another process may have changed or replaced it meanwhile.
            let deleted = try update(key) { job -> DelayedLeaveJob? in
                guard let current = job, current.jobID == seen.jobID, JobMachine.isExpired(current, now: now, liveOwners: live) else { return nil }
                job = nil
                return current
            }
            if let deleted { purged.append(deleted) }
        }
        return purged
    }
}
