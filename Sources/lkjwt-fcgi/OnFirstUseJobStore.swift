import LKJWTLogic
import Synchronization

/// The job store of a plain CGI request, opened when the request first touches a job: most requests
/// (`/healthz`, tokens without a delayed leave, OPTIONS) never do, and opening SQLite or connecting to
/// Redis was a large part of every CGI request's start-up. A store that cannot be opened fails the
/// job operation (as a store failure does), not the whole request.
final class OnFirstUseJobStore: JobStore {
    private let location: JobStoreLocation
    /// Runs once, right after opening (the CGI warning when no scheduler is alive, §8.10 rule 8).
    private let opened: @Sendable (any JobStore) -> Void
    private let store = Mutex<Result<any JobStore, JobStoreError>?>(nil)

    init(_ location: JobStoreLocation, opened: @escaping @Sendable (any JobStore) -> Void) {
        self.location = location
        self.opened = opened
    }

    private func open() throws(JobStoreError) -> any JobStore {
        let (result, isNew) = store.withLock { store in
            if let store { return (store, false) }
            let result = Result { () throws(ConfigurationError) in try location.open() }.mapError { JobStoreError($0.message) }
            store = result
            return (result, true)
        }
        if isNew, case .success(let opened) = result { self.opened(opened) }
        return try result.get()
    }

    var name: String { location.description }

    func update<Result: Sendable>(_ key: JobKey, _ body: (inout DelayedLeaveJob?) -> Result) throws(JobStoreError) -> Result {
        try open().update(key, body)
    }

    func create(_ job: DelayedLeaveJob, quota: JobQuota) throws(JobStoreError) -> JobCreation {
        try open().create(job, quota: quota)
    }

    func key(room: String, identity: String) throws(JobStoreError) -> JobKey? {
        try open().key(room: room, identity: identity)
    }

    func dueKeys(now: Int64, limit: Int) throws(JobStoreError) -> [JobKey] {
        try open().dueKeys(now: now, limit: limit)
    }

    func allRecords() throws(JobStoreError) -> [(key: JobKey, job: Swift.Result<DelayedLeaveJob, DelayedLeaveJob.RecordError>)] {
        try open().allRecords()
    }

    func delete(_ key: JobKey) throws(JobStoreError) {
        try open().delete(key)
    }

    func writeHeartbeat(_ now: Int64) throws(JobStoreError) {
        try open().writeHeartbeat(now)
    }

    func newestHeartbeat() throws(JobStoreError) -> Int64? {
        try open().newestHeartbeat()
    }

    func renewLiveness(of owner: String, expires: Int64) throws(JobStoreError) {
        try open().renewLiveness(of: owner, expires: expires)
    }

    func removeLiveness(of owner: String, lapsedAt: Int64?) throws(JobStoreError) {
        try open().removeLiveness(of: owner, lapsedAt: lapsedAt)
    }

    func livenessRecords() throws(JobStoreError) -> [String: Int64] {
        try open().livenessRecords()
    }

    func updateParticipant<Result: Sendable>(_ key: JobKey, _ body: (inout TrackedParticipant?) -> Result) throws(JobStoreError) -> Result {
        try open().updateParticipant(key, body)
    }

    func trackedParticipants() throws(JobStoreError) -> [TrackedParticipant] {
        try open().trackedParticipants()
    }

    func claimMembershipSweep(
        owner: String, now: Int64, interval: Int64, lease: Int64, goneOwners: Set<String>
    ) throws(JobStoreError) -> MembershipSweepLease.Claim {
        try open().claimMembershipSweep(owner: owner, now: now, interval: interval, lease: lease, goneOwners: goneOwners)
    }

    func releaseMembershipSweep(owner: String) throws(JobStoreError) {
        try open().releaseMembershipSweep(owner: owner)
    }

    func withRecoveryLock<Result>(_ body: () throws(JobStoreError) -> Result) throws(JobStoreError) -> Result {
        try open().withRecoveryLock(body)
    }
}
