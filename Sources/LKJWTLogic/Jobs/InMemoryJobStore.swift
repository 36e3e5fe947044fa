import Synchronization

/// `LIVEKIT_JOBS_DB=:memory:`: jobs of this process only, neither durable nor shared. Also the
/// reference implementation the store conformance tests check the others against.
public final class InMemoryJobStore: JobStore {
    private struct Contents {
        var records: [JobKey: String] = [:]
        var heartbeat: Int64?
        /// Owner and server name of every parsable record, for the quota counts.
        var subjects: [JobKey: (owner: String, server: String)] = [:]

        mutating func store(_ key: JobKey, _ job: DelayedLeaveJob?) {
            records[key] = job?.record()
            subjects[key] = job.map { ($0.ownerUserID, $0.serverName) }
        }

        /// The job under `key`; nil if none; throws if the record cannot be parsed.
        func job(_ key: JobKey) throws(JobStoreError) -> DelayedLeaveJob? {
            guard let record = records[key] else { return nil }
            do {
                return try DelayedLeaveJob(record: record)
            } catch {
                throw .unparsable(key, error)
            }
        }
        var liveness: [String: Int64] = [:]
        var participants: [JobKey: String] = [:]
        var sweepLease: MembershipSweepLease?
    }

    private let contents = Mutex(Contents())
    private let recoveryLock = Mutex(())

    public init() {}

    public var name: String { "memory" }

    public func update<Result: Sendable>(_ key: JobKey, _ body: (inout DelayedLeaveJob?) -> Result) throws(JobStoreError) -> Result {
        try contents.withLock { contents throws(JobStoreError) in
            var job = try contents.job(key)
            let before = job
            let result = body(&job)
            if job != before {
                job?.version = (before?.version ?? 0) + 1
                contents.store(key, job)
            }
            return result
        }
    }

    public func create(_ job: DelayedLeaveJob, quota: JobQuota) throws(JobStoreError) -> JobCreation {
        contents.withLock { contents in
            let (creation, previous) = JobCreation.over(contents.records[job.key])
            if creation == .created {
                let subjects = contents.subjects.values
                if let limit = quota.perUser, !job.ownerUserID.isEmpty, subjects.count(where: { $0.owner == job.ownerUserID }) >= limit {
                    return .refused(.user)
                }
                if let limit = quota.perServer, subjects.count(where: { $0.server == job.serverName }) >= limit {
                    return .refused(.server)
                }
            }
            var created = job
            created.version = (previous?.version ?? 0) + 1
            contents.store(job.key, created)
            return creation
        }
    }

    public func key(room: String, identity: String) throws(JobStoreError) -> JobKey? {
        let direct = JobKey(room: room, identity: identity)
        return contents.withLock { contents in
            if contents.records[direct] != nil { return direct }
            return contents.records.first { key, record in
                key.room == room && ((try? DelayedLeaveJob(record: record))?.alternativeIdentities.contains(identity) ?? false)
            }?.key
        }
    }

    public func dueKeys(now: Int64, limit: Int) throws(JobStoreError) -> [JobKey] {
        contents.withLock { contents in
            contents.records.compactMap { key, record -> (JobKey, Int64)? in
                guard let due = (try? DelayedLeaveJob(record: record))?.nextDue, due <= now else { return nil }
                return (key, due)
            }
            .sorted { $0.1 < $1.1 }
            .prefix(limit)
            .map(\.0)
        }
    }

    public func allRecords() throws(JobStoreError) -> [(key: JobKey, job: Result<DelayedLeaveJob, DelayedLeaveJob.RecordError>)] {
        contents.withLock { contents in
            contents.records.map { key, record in
                (key, Result { () throws(DelayedLeaveJob.RecordError) in try DelayedLeaveJob(record: record) })
            }
        }
    }

    public func delete(_ key: JobKey) throws(JobStoreError) {
        contents.withLock { $0.store(key, nil) }
    }

    /// Stores a raw record, for tests of unparsable and foreign records.
    func storeRaw(_ key: JobKey, _ record: String) {
        contents.withLock { contents in
            contents.records[key] = record
            contents.subjects[key] = (try? DelayedLeaveJob(record: record)).map { ($0.ownerUserID, $0.serverName) }
        }
    }

    public func writeHeartbeat(_ now: Int64) throws(JobStoreError) {
        contents.withLock { $0.heartbeat = max($0.heartbeat ?? now, now) }
    }

    public func newestHeartbeat() throws(JobStoreError) -> Int64? {
        contents.withLock { $0.heartbeat }
    }

    public func renewLiveness(of owner: String, expires: Int64) throws(JobStoreError) {
        contents.withLock { $0.liveness[owner] = expires }
    }

    public func removeLiveness(of owner: String, lapsedAt: Int64?) throws(JobStoreError) {
        contents.withLock { contents in
            guard let expires = contents.liveness[owner] else { return }
            if let lapsedAt, expires > lapsedAt { return }
            contents.liveness[owner] = nil
        }
    }

    public func livenessRecords() throws(JobStoreError) -> [String: Int64] {
        contents.withLock { $0.liveness }
    }

    public func withRecoveryLock<Result>(_ body: () throws(JobStoreError) -> Result) throws(JobStoreError) -> Result {
        try recoveryLock.withLock { _ throws(JobStoreError) in try body() }
    }

    // MARK: Tracked participants

    public func updateParticipant<Result: Sendable>(_ key: JobKey, _ body: (inout TrackedParticipant?) -> Result) throws(JobStoreError) -> Result {
        contents.withLock { contents in
            let stored = contents.participants[key].flatMap { try? TrackedParticipant(record: $0) }.flatMap { $0.key == key ? $0 : nil }
            var participant = stored
            let result = body(&participant)
            if participant != stored, participant != nil || stored != nil {
                contents.participants[key] = participant?.record()
            }
            return result
        }
    }

    public func trackedParticipants() throws(JobStoreError) -> [TrackedParticipant] {
        contents.withLock { contents in
            contents.participants.compactMap { key, record in (try? TrackedParticipant(record: record)).flatMap { $0.key == key ? $0 : nil } }
        }
    }

    public func claimMembershipSweep(owner: String, now: Int64, interval: Int64, lease: Int64, goneOwners: Set<String>) throws(JobStoreError) -> MembershipSweepLease.Claim {
        contents.withLock { contents in
            let (claim, claimed) = MembershipSweepLease.claim(contents.sweepLease, owner: owner, now: now, interval: interval, lease: lease, goneOwners: goneOwners)
            if let claimed { contents.sweepLease = claimed }
            return claim
        }
    }

    public func releaseMembershipSweep(owner: String) throws(JobStoreError) {
        contents.withLock { contents in
            if let released = MembershipSweepLease.release(contents.sweepLease, owner: owner) { contents.sweepLease = released }
        }
    }

    /// Stores a raw participant record, for tests of unreadable and upstream records.
    func storeRawParticipant(_ key: JobKey, _ record: String) {
        contents.withLock { $0.participants[key] = record }
    }
}
