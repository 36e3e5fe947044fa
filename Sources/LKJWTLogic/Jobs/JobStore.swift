import FoundationEssentials

/// Where jobs live: shared by every worker process (SQLite file or Redis), or one process (memory).
/// The store is the only source of truth (contract §8.10); implementations keep records as
/// `DelayedLeaveJob.record()` text, indexed by key, by every watched identity and by `nextDue`.
public protocol JobStore: Sendable {
    /// Atomically reads the job under `key` (nil if none), lets `body` change it (nil deletes it) and
    /// writes the result, bumping `version`. `body` may run more than once (optimistic stores retry
    /// on conflict), so it must be free of side effects. A record that cannot be parsed is neither
    /// given to `body` nor overwritten: the update throws an `.unparsableRecord` error, and the
    /// record leaves the due index so that schedulers stop picking it up (§8.11, §13.5).
    func update<Result: Sendable>(_ key: JobKey, _ body: (inout DelayedLeaveJob?) -> Result) throws(JobStoreError) -> Result

    /// Stores a new job under its key (§8.8), in one atomic operation with the check of `quota`
    /// (§13.4): a key without a job counts against the owner's and the server's caps, a replacement
    /// does not, and a refused creation writes nothing. Replaces an unparsable record.
    func create(_ job: DelayedLeaveJob, quota: JobQuota) throws(JobStoreError) -> JobCreation

    /// The key of the job watching `identity` in `room`, as its main or an alternative identity.
    func key(room: String, identity: String) throws(JobStoreError) -> JobKey?

    /// Keys of jobs whose `nextDue` is at or before `now`, soonest first.
    func dueKeys(now: Int64, limit: Int) throws(JobStoreError) -> [JobKey]

    /// Every stored record, parsed or not, for cold-start recovery.
    func allRecords() throws(JobStoreError) -> [(key: JobKey, job: Result<DelayedLeaveJob, DelayedLeaveJob.RecordError>)]

    /// Deletes whatever is stored under `key`, parsable or not.
    func delete(_ key: JobKey) throws(JobStoreError)

    /// The store-wide heartbeat of live schedulers (§8.10 rule 6).
    func writeHeartbeat(_ now: Int64) throws(JobStoreError)
    func newestHeartbeat() throws(JobStoreError) -> Int64?

    /// Claim owners' liveness records (§8.10 rule 4, rev. 2): a scheduler keeps its own alive while it
    /// runs, so that others can take over the claims of one that died long before their leases end.
    /// Sets `owner`'s record to expire at `expires` (Unix milliseconds).
    func renewLiveness(of owner: String, expires: Int64) throws(JobStoreError)

    /// Removes `owner`'s record: always when `lapsedAt` is nil (a graceful stop), otherwise only if it
    /// expired at or before `lapsedAt` (its claims were taken over and it has not renewed meanwhile).
    func removeLiveness(of owner: String, lapsedAt: Int64?) throws(JobStoreError)

    /// Every owner with a liveness record, and when that record expires.
    func livenessRecords() throws(JobStoreError) -> [String: Int64]

    /// Runs `body` holding a store-wide lock that other processes wait for (cold-start recovery).
    func withRecoveryLock<Result>(_ body: () throws(JobStoreError) -> Result) throws(JobStoreError) -> Result

    /// For the start-up log: `sqlite:<path>`, `redis:<host>`, `memory`.
    var name: String { get }
}

public struct JobStoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The store could not do its work (I/O, lock, database error).
        case failure
        /// The record under the key is not a job this version can read; it was left in place.
        case unparsableRecord
    }

    /// What the library or the system reported, so that a busy database can be told from a corrupt one.
    public enum Cause: Sendable, Equatable {
        /// A library's own error code: SQLite's extended result code, hiredis's context error.
        case library(String, code: Int32)
        /// Redis answered the command with an error reply; the connection is fine.
        case errorReply
        case system(SystemCallError)
    }

    public let message: String
    public let kind: Kind
    public let cause: Cause?

    public init(_ message: String, kind: Kind = .failure, cause: Cause? = nil) {
        self.message = message
        self.kind = kind
        self.cause = cause
    }

    package static func unparsable(_ key: JobKey, _ error: DelayedLeaveJob.RecordError) -> JobStoreError {
        JobStoreError("stored job \(key) cannot be parsed: \(error)", kind: .unparsableRecord)
    }

    public var description: String { message }
}
