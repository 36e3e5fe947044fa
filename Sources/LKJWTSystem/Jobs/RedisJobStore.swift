import CHiredis
import Glibc
import LKJWTLogic
import Synchronization

/// `LIVEKIT_REDIS_URL`: jobs in a Redis server shared by the workers of every host (contract §8.9).
/// Keys, all under upstream's `lk-jwt:` prefix:
/// - hash `lk-jwt:jobs`: `JobKey.storageName` → `DelayedLeaveJob.record()`, the layout upstream
///   lk-jwt-service reads and writes;
/// - sorted set `lk-jwt:due`: storageName scored by `nextDue`, absent while a job has none;
/// - hash `lk-jwt:identities`: canonical JSON `[room, identity]` of every identity a job watches →
///   its storageName;
/// - strings `lk-jwt:heartbeat` (newest scheduler heartbeat) and `lk-jwt:recovery-lock`;
/// - sets `lk-jwt:user-jobs:<owner>` and `lk-jwt:server-jobs:<server name>`: storageNames of each
///   owner's and server's jobs, for the quotas of §13.4 (members whose record upstream deleted are
///   pruned when a count reaches its cap).
/// - sorted set `lk-jwt:claim-owners`: liveness of claim owners, scored by their record's expiry.
/// - hash `lk-jwt:participants`: the membership monitor's tracked participants, field
///   `JobKey.storageName` → `TrackedParticipant.record()`, upstream PR #235's layout (notes §4.4);
/// - string `lk-jwt:membership-sweep`: the deployment-wide sweep lease (`MembershipSweepLease`).
/// Every change is one Lua script that applies only while the record is still the one that was read
/// (optimistic concurrency), so the three structures change together.
public final class RedisJobStore: JobStore {
    private static let jobsKey = "lk-jwt:jobs"
    private static let dueKey = "lk-jwt:due"
    private static let identitiesKey = "lk-jwt:identities"
    private static let heartbeatKey = "lk-jwt:heartbeat"
    private static let recoveryLockKey = "lk-jwt:recovery-lock"
    private static let userJobsPrefix = "lk-jwt:user-jobs:"
    private static let serverJobsPrefix = "lk-jwt:server-jobs:"
    private static let claimOwnersKey = "lk-jwt:claim-owners"
    private static let participantsKey = "lk-jwt:participants"
    private static let sweepLeaseKey = "lk-jwt:membership-sweep"
    /// Long enough for a recovery pass over many jobs, short enough that a holder that died does not
    /// hold up other processes' start-up for long.
    private static let recoveryLockMilliseconds = 60_000
    /// Conflicts come from other workers touching the same job; this many in a row means something is wrong.
    private static let updateAttempts = 50

    public let name: String
    private let url: RedisURL
    /// Idle connections; each is used by one thread at a time and returned after the call.
    private let idle = Mutex<[Connection]>([])

    /// Debian's libhiredis (0.14) has no TLS support.
    public static let supportsTLS = false

    /// Connects, authenticates, selects the database and pings, so that a wrong URL stops start-up.
    public init(url: RedisURL) throws(JobStoreError) {
        self.url = url
        switch url.endpoint {
        case .tcp(let host, _): name = "redis:\(host)"
        case .unix(let path): name = "redis:\(path)"
        }
        do throws(Failure) {
            let connection = try Connection(url)
            _ = try connection.run(["PING"])
            idle.withLock { $0.append(connection) }
        } catch {
            throw JobStoreError(error.message, cause: error.cause)
        }
    }

    public func update<Result: Sendable>(_ key: JobKey, _ body: (inout DelayedLeaveJob?) -> Result) throws(JobStoreError) -> Result {
        let field = key.storageName
        // The write of an attempt whose connection broke may have landed before the reply was lost; the
        // retry on a fresh connection recognises it instead of applying `body` a second time.
        var unconfirmed: (record: String?, result: Result)?
        return try retryingConflicts("job \(key)", "update") { connection throws(Failure) -> Result? in
            let stored = try connection.run(["HGET", Self.jobsKey, field]).string
            if let unconfirmed, unconfirmed.record == stored { return unconfirmed.result }
            let before: DelayedLeaveJob?
            do throws(DelayedLeaveJob.RecordError) {
                before = try stored.map { record throws(DelayedLeaveJob.RecordError) in try DelayedLeaveJob(record: record) }
            } catch {
                // Left in place for an operator (or a newer version), but no longer due.
                _ = try connection.run(["EVAL", Self.unscheduleScript, "2", Self.jobsKey, Self.dueKey, field, stored ?? ""])
                throw .unparsable(JobStoreError.unparsable(key, error))
            }
            var job = before
            let result = body(&job)
            guard job != before else { return result }
            job?.version = (before?.version ?? 0) + 1
            unconfirmed = (job?.record(), result)
            if try Self.apply(field, room: key.room, stored: stored, before: before, after: job, on: connection) == .applied { return result }
            unconfirmed = nil
            return nil
        }
    }

    public func create(_ job: DelayedLeaveJob, quota: JobQuota) throws(JobStoreError) -> JobCreation {
        let field = job.key.storageName
        var unconfirmed: (record: String, creation: JobCreation)?
        return try retryingConflicts("job \(job.key)", "create") { connection throws(Failure) -> JobCreation? in
            let stored = try connection.run(["HGET", Self.jobsKey, field]).string
            if let unconfirmed, unconfirmed.record == stored { return unconfirmed.creation }
            let (creation, before) = JobCreation.over(stored)
            var created = job
            created.version = (before?.version ?? 0) + 1
            unconfirmed = (created.record(), creation)
            // The caps are checked inside the script, only when the key holds nothing.
            switch try Self.apply(field, room: job.key.room, stored: stored, before: before, after: created, quota: quota, on: connection) {
            case .applied: return creation
            case .refused(let cap): return .refused(cap)
            case .conflict: break
            }
            unconfirmed = nil
            return nil
        }
    }

    public func key(room: String, identity: String) throws(JobStoreError) -> JobKey? {
        let direct = JobKey(room: room, identity: identity)
        let found = try command(["EVAL", Self.lookupScript, "2", Self.jobsKey, Self.identitiesKey, direct.storageName]).elements
        guard found.count == 2 else { return found.isEmpty ? nil : direct }
        // The index is only as fresh as the records written here: upstream may have replaced one since.
        guard let name = found[0].string, let candidate = JobKey(storageName: name), candidate.room == room,
            let record = found[1].string
        else { return nil }
        // An unreadable record is reported, not taken for "no job": the caller logs it.
        let job: DelayedLeaveJob
        do throws(DelayedLeaveJob.RecordError) {
            job = try DelayedLeaveJob(record: record)
        } catch {
            throw .unparsable(candidate, error)
        }
        return job.allIdentities.contains(identity) ? candidate : nil
    }

    public func dueKeys(now: Int64, limit: Int) throws(JobStoreError) -> [JobKey] {
        let due = try command(["EVAL", Self.dueScript, "2", Self.jobsKey, Self.dueKey, String(now), String(max(limit, 0))])
        return due.elements.compactMap { $0.string.flatMap(JobKey.init(storageName:)) }
    }

    public func allRecords() throws(JobStoreError) -> [(key: JobKey, job: Result<DelayedLeaveJob, DelayedLeaveJob.RecordError>)] {
        let pairs = try command(["HGETALL", Self.jobsKey]).elements
        // A field that is no `[room, identity]` name is neither ours nor upstream's: not a job.
        return stride(from: 0, to: pairs.count - 1, by: 2).compactMap { index in
            guard let name = pairs[index].string, let key = JobKey(storageName: name), let record = pairs[index + 1].string else { return nil }
            return (key, Result { () throws(DelayedLeaveJob.RecordError) in try DelayedLeaveJob(record: record) })
        }
    }

    public func delete(_ key: JobKey) throws(JobStoreError) {
        let field = key.storageName
        try retryingConflicts("job \(key)", "delete") { connection throws(Failure) -> Void? in
            let stored = try connection.run(["HGET", Self.jobsKey, field]).string
            let before = stored.flatMap { try? DelayedLeaveJob(record: $0) }
            if try Self.apply(field, room: key.room, stored: stored, before: before, after: nil, on: connection) == .applied { return () }
            return nil
        }
    }

    public func writeHeartbeat(_ now: Int64) throws(JobStoreError) {
        _ = try command(["EVAL", Self.heartbeatScript, "1", Self.heartbeatKey, String(now)])
    }

    public func newestHeartbeat() throws(JobStoreError) -> Int64? {
        try command(["GET", Self.heartbeatKey]).string.flatMap { Int64($0) }
    }

    /// Expiry times are the owners' wall clocks, like every due time in the store: hosts sharing it
    /// must be time-synchronised (§8.10 rule 7).
    public func renewLiveness(of owner: String, expires: Int64) throws(JobStoreError) {
        _ = try command(["ZADD", Self.claimOwnersKey, String(expires), owner])
    }

    public func removeLiveness(of owner: String, lapsedAt: Int64?) throws(JobStoreError) {
        guard let lapsedAt else {
            _ = try command(["ZREM", Self.claimOwnersKey, owner])
            return
        }
        _ = try command(["EVAL", Self.removeLapsedOwnerScript, "1", Self.claimOwnersKey, owner, String(lapsedAt)])
    }

    public func livenessRecords() throws(JobStoreError) -> [String: Int64] {
        let flat = try command(["ZRANGE", Self.claimOwnersKey, "0", "-1", "WITHSCORES"]).elements
        var records: [String: Int64] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            guard let owner = flat[index].string, let score = flat[index + 1].string.flatMap(Double.init), score.isFinite,
                abs(score) < 9e15
            else { continue }
            records[owner] = Int64(score)
        }
        return records
    }

    /// A Redis lock with an expiry (a holder that dies cannot block recovery for ever), owned through a
    /// random token so that a holder whose lock expired cannot release its successor's.
    public func withRecoveryLock<Result>(_ body: () throws(JobStoreError) -> Result) throws(JobStoreError) -> Result {
        let token = SystemRandomSource().bytes(16).map { String(UInt16($0) | 0x100, radix: 16).dropFirst() }.joined()
        while case .null = try command(["SET", Self.recoveryLockKey, token, "NX", "PX", String(Self.recoveryLockMilliseconds)]) {
            SystemCall.sleep(for: .milliseconds(25))
        }
        // A failed release leaves the lock to expire.
        defer { _ = try? command(["EVAL", Self.releaseScript, "1", Self.recoveryLockKey, token]) }
        return try body()
    }

    // MARK: - Tracked participants

    public func updateParticipant<Result: Sendable>(_ key: JobKey, _ body: (inout TrackedParticipant?) -> Result) throws(JobStoreError) -> Result {
        let field = key.storageName
        var unconfirmed: (record: String?, result: Result)?
        return try retryingConflicts("participant \(key)", "update") { connection throws(Failure) -> Result? in
            let record = try connection.run(["HGET", Self.participantsKey, field]).string
            if let unconfirmed, unconfirmed.record == record { return unconfirmed.result }
            let stored = record.flatMap { try? TrackedParticipant(record: $0) }.flatMap { $0.key == key ? $0 : nil }
            var participant = stored
            let result = body(&participant)
            // An unreadable record is replaced only by a participant, never deleted by a nil.
            guard participant != stored, participant != nil || stored != nil else { return result }
            unconfirmed = (participant?.record(), result)
            let written = try connection.run([
                "EVAL", Self.compareAndSetScript, "1", Self.participantsKey, field, record == nil ? "0" : "1", record ?? "",
                participant == nil ? "0" : "1", participant?.record() ?? "",
            ])
            if written.integer == 1 { return result }
            unconfirmed = nil
            return nil
        }
    }

    public func trackedParticipants() throws(JobStoreError) -> [TrackedParticipant] {
        let pairs = try command(["HGETALL", Self.participantsKey]).elements
        return stride(from: 0, to: pairs.count - 1, by: 2).compactMap { index in
            guard let name = pairs[index].string, let key = JobKey(storageName: name), let record = pairs[index + 1].string,
                let participant = try? TrackedParticipant(record: record), participant.key == key
            else { return nil }
            return participant
        }
    }

    public func claimMembershipSweep(owner: String, now: Int64, interval: Int64, lease: Int64, goneOwners: Set<String>) throws(JobStoreError) -> MembershipSweepLease.Claim {
        try retryingConflicts("the membership sweep lease", "claim") { connection throws(Failure) -> MembershipSweepLease.Claim? in
            let record = try connection.run(["GET", Self.sweepLeaseKey]).string
            let (claim, claimed) = MembershipSweepLease.claim(
                record.flatMap(MembershipSweepLease.init(record:)), owner: owner, now: now, interval: interval, lease: lease, goneOwners: goneOwners)
            guard let claimed else { return claim }
            let written = try connection.run([
                "EVAL", Self.compareAndSetStringScript, "1", Self.sweepLeaseKey, record == nil ? "0" : "1", record ?? "", claimed.record(),
            ])
            // Lost the race: another process claimed this sweep.
            if written.integer == 1 { return claim }
            return nil
        }
    }

    public func releaseMembershipSweep(owner: String) throws(JobStoreError) {
        try retryingConflicts("the membership sweep lease", "release") { connection throws(Failure) -> Void? in
            let record = try connection.run(["GET", Self.sweepLeaseKey]).string
            guard let released = MembershipSweepLease.release(record.flatMap(MembershipSweepLease.init(record:)), owner: owner) else { return () }
            let written = try connection.run([
                "EVAL", Self.compareAndSetStringScript, "1", Self.sweepLeaseKey, "1", record ?? "", released.record(),
            ])
            if written.integer == 1 { return () }
            return nil
        }
    }

    // MARK: - Scripts and their use

    private enum Application: Equatable {
        case applied
        /// The stored record changed since it was read.
        case conflict
        case refused(JobQuota.Cap)
    }

    /// Writes (or deletes) a record with its due entry, identity index entries and quota set
    /// memberships if the stored record is still `stored`; with `quota`, a write to an empty key
    /// must also fit in its caps.
    private static func apply(
        _ field: String, room: String, stored: String?, before: DelayedLeaveJob?, after: DelayedLeaveJob?, quota: JobQuota = .unlimited,
        on connection: Connection
    ) throws(Failure) -> Application {
        let indexFields = { (job: DelayedLeaveJob?) in (job?.allIdentities ?? []).map { JobKey(room: room, identity: $0).storageName } }
        let oldFields = indexFields(before)
        let owner = after?.ownerUserID ?? ""
        var arguments = ["EVAL", applyScript, "7", jobsKey, dueKey, identitiesKey]
        arguments += [
            userJobsPrefix + (before?.ownerUserID ?? ""), serverJobsPrefix + (before?.serverName ?? ""),
            userJobsPrefix + owner, serverJobsPrefix + (after?.serverName ?? ""),
        ]
        arguments += [field, stored == nil ? "0" : "1", stored ?? "", after == nil ? "0" : "1", after?.record() ?? ""]
        arguments += [after?.nextDue.map { String($0) } ?? "", (before?.ownerUserID ?? "").isEmpty ? "0" : "1", owner.isEmpty ? "0" : "1"]
        arguments += [owner.isEmpty ? "" : quota.perUser.map { String($0) } ?? "", quota.perServer.map { String($0) } ?? ""]
        arguments += [String(oldFields.count)] + oldFields + indexFields(after)
        switch try connection.run(arguments).integer {
        case 1: return .applied
        case -1: return .refused(.user)
        case -2: return .refused(.server)
        default: return .conflict
        }
    }

    /// KEYS: jobs, due, identities, old owner's set, old server's set, new owner's set, new server's
    /// set. ARGV: field, stored exists (0/1), stored record, write (0/1, else delete), new record, due
    /// score ('' = none), old job has an owner (0/1), new job has an owner (0/1), owner cap ('' =
    /// none), server cap ('' = none), number of old index fields, old index fields, new index fields.
    /// Old index entries are removed only while they still point at this job: the same identity may
    /// meanwhile be another job's. The caps apply only when the key holds nothing (no replacement).
    private static let applyScript = """
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if (ARGV[2] == '1' and current ~= ARGV[3]) or (ARGV[2] == '0' and current) then
          return 0
        end
        local function live(set, cap)
          local count = redis.call('SCARD', set)
          if count < cap then
            return count
          end
          for _, name in ipairs(redis.call('SMEMBERS', set)) do
            if redis.call('HEXISTS', KEYS[1], name) == 0 then
              redis.call('SREM', set, name)
              count = count - 1
            end
          end
          return count
        end
        if ARGV[2] == '0' and ARGV[4] == '1' then
          if ARGV[9] ~= '' and live(KEYS[6], tonumber(ARGV[9])) >= tonumber(ARGV[9]) then
            return -1
          end
          if ARGV[10] ~= '' and live(KEYS[7], tonumber(ARGV[10])) >= tonumber(ARGV[10]) then
            return -2
          end
        end
        local oldCount = tonumber(ARGV[11])
        for i = 12, 11 + oldCount do
          if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[1] then
            redis.call('HDEL', KEYS[3], ARGV[i])
          end
        end
        if ARGV[2] == '1' then
          if ARGV[7] == '1' then
            redis.call('SREM', KEYS[4], ARGV[1])
          end
          redis.call('SREM', KEYS[5], ARGV[1])
        end
        if ARGV[4] == '0' then
          redis.call('HDEL', KEYS[1], ARGV[1])
          redis.call('ZREM', KEYS[2], ARGV[1])
          return 1
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
        if ARGV[6] == '' then
          redis.call('ZREM', KEYS[2], ARGV[1])
        else
          redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
        end
        if ARGV[8] == '1' then
          redis.call('SADD', KEYS[6], ARGV[1])
        end
        redis.call('SADD', KEYS[7], ARGV[1])
        for i = 12 + oldCount, #ARGV do
          redis.call('HSET', KEYS[3], ARGV[i], ARGV[1])
        end
        return 1
        """

    /// KEYS: jobs, due. ARGV: field, the unparsable record read. Takes it off the due index while
    /// it is still that record, so that schedulers stop picking it up.
    private static let unscheduleScript = """
        if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
          redis.call('ZREM', KEYS[2], ARGV[1])
        end
        return 0
        """

    /// KEYS: jobs, identities. ARGV: `[room, identity]`. Returns `{}` (none), `{field}` (the job's
    /// own key, possibly a record written by upstream, which is not indexed) or `{field, record}` (an
    /// index hit, for the caller to verify).
    private static let lookupScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
          return {ARGV[1]}
        end
        local name = redis.call('HGET', KEYS[2], ARGV[1])
        if not name then
          return {}
        end
        local record = redis.call('HGET', KEYS[1], name)
        if not record then
          return {}
        end
        return {name, record}
        """

    /// KEYS: jobs, due. ARGV: now, limit. Due entries whose record vanished (deleted by upstream, which
    /// knows nothing of the due set) are dropped on the way, so they cannot crowd out real work.
    private static let dueScript = """
        local limit = tonumber(ARGV[2])
        local due = {}
        local offset = 0
        while #due < limit do
          local batch = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', offset, limit - #due)
          if #batch == 0 then
            break
          end
          for _, name in ipairs(batch) do
            if redis.call('HEXISTS', KEYS[1], name) == 1 then
              due[#due + 1] = name
              offset = offset + 1
            else
              redis.call('ZREM', KEYS[2], name)
            end
          end
        end
        return due
        """

    /// Keeps the newest value: workers on several hosts write with slightly different clocks.
    private static let heartbeatScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '')
        if current == nil or current < tonumber(ARGV[1]) then
          redis.call('SET', KEYS[1], ARGV[1])
        end
        return 0
        """

    /// KEYS: claim owners. ARGV: owner, lapsed-at. Removes the owner only if it has not renewed since.
    private static let removeLapsedOwnerScript = """
        local expires = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '')
        if expires ~= nil and expires <= tonumber(ARGV[2]) then
          return redis.call('ZREM', KEYS[1], ARGV[1])
        end
        return 0
        """

    /// KEYS: a hash. ARGV: field, stored exists (0/1), stored value, write (0/1, else delete), new
    /// value. Applies only while the field still holds what was read.
    private static let compareAndSetScript = """
        local current = redis.call('HGET', KEYS[1], ARGV[1])
        if (ARGV[2] == '1' and current ~= ARGV[3]) or (ARGV[2] == '0' and current) then
          return 0
        end
        if ARGV[4] == '1' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
        else
          redis.call('HDEL', KEYS[1], ARGV[1])
        end
        return 1
        """

    /// KEYS: a string. ARGV: stored exists (0/1), stored value, new value. Sets it only while it still
    /// holds what was read.
    private static let compareAndSetStringScript = """
        local current = redis.call('GET', KEYS[1])
        if (ARGV[1] == '1' and current ~= ARGV[2]) or (ARGV[1] == '0' and current) then
          return 0
        end
        redis.call('SET', KEYS[1], ARGV[3])
        return 1
        """

    private static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('DEL', KEYS[1])
        end
        return 0
        """

    // MARK: - Connections

    private func command(_ arguments: [String]) throws(JobStoreError) -> Reply {
        try withConnection { connection throws(Failure) in try connection.run(arguments) }
    }

    /// Runs `body` on an idle connection or a new one. A broken connection (a pooled one may have been
    /// closed by a Redis restart or idle timeout) is replaced and `body` run again, once per call.
    private func withConnection<T>(_ body: (Connection) throws(Failure) -> T) throws(JobStoreError) -> T {
        var connection: Connection
        if let pooled = idle.withLock({ $0.popLast() }) {
            connection = pooled
        } else {
            connection = try connect()
        }
        var reconnected = false
        while true {
            do throws(Failure) {
                let result = try body(connection)
                idle.withLock { [connection] in $0.append(connection) }
                return result
            } catch {
                switch error {
                case .command(let message):
                    idle.withLock { [connection] in $0.append(connection) }
                    throw JobStoreError("Redis: \(message)", cause: error.cause)
                case .unparsable(let error):
                    idle.withLock { [connection] in $0.append(connection) }
                    throw error
                case .connection(let message, _):
                    guard !reconnected else { throw JobStoreError("Redis: \(message)", cause: error.cause) }
                    reconnected = true
                    connection = try connect()
                }
            }
        }
    }

    private func connect() throws(JobStoreError) -> Connection {
        do throws(Failure) {
            return try Connection(url)
        } catch {
            throw JobStoreError("Redis: \(error.message)", cause: error.cause)
        }
    }

    /// Randomised and growing, so that workers colliding on one job spread out.
    /// Runs `attempt` on one connection until it returns a value; nil means another writer changed
    /// the record between its read and its compare-and-set, so it reads again after a short pause.
    private func retryingConflicts<Value>(
        _ subject: @autoclosure () -> String, _ purpose: String, _ attempt: (Connection) throws(Failure) -> Value?
    ) throws(JobStoreError) -> Value {
        try withConnection { connection throws(Failure) -> Value in
            for number in 0..<Self.updateAttempts {
                if let value = try attempt(connection) { return value }
                Self.backOff(number)
            }
            throw .command("\(subject()) kept changing under \(Self.updateAttempts) attempts to \(purpose) it")
        }
    }

    private static func backOff(_ attempt: Int) {
        SystemCall.sleep(for: .microseconds(Int.random(in: 0...(min(attempt, 20) + 1) * 250)))
    }

    private enum Failure: Error {
        /// The connection is unusable: hiredis's context error (`REDIS_ERR_IO`, `REDIS_ERR_EOF`,
        /// `REDIS_ERR_TIMEOUT`, `REDIS_ERR_PROTOCOL`…), or 0 when a set-up command was refused.
        case connection(String, code: Int32)
        /// Redis answered with an error; the connection is fine.
        case command(String)
        /// The record is unreadable; the connection is fine.
        case unparsable(JobStoreError)

        var message: String {
            switch self {
            case .connection(let message, _), .command(let message): message
            case .unparsable(let error): error.message
            }
        }

        var cause: JobStoreError.Cause? {
            switch self {
            case .connection(_, let code): code == 0 ? .errorReply : .library("hiredis", code: code)
            case .command: .errorReply
            case .unparsable(let error): error.cause
            }
        }
    }

    private enum Reply {
        /// A bulk string or a status such as `OK`: no caller needs to tell them apart.
        case string(String)
        case integer(Int64)
        case array([Reply])
        case null

        var string: String? {
            if case .string(let value) = self { value } else { nil }
        }

        var integer: Int64? {
            if case .integer(let value) = self { value } else { nil }
        }

        var elements: [Reply] {
            if case .array(let value) = self { value } else { [] }
        }
    }

    /// One blocking hiredis connection, authenticated and on the URL's database. Unchecked Sendable:
    /// the pool hands it to one thread at a time.
    private final class Connection: @unchecked Sendable {
        private static let timeout = timeval(tv_sec: 5, tv_usec: 0)

        private let context: UnsafeMutablePointer<redisContext>

        init(_ url: RedisURL) throws(Failure) {
            let address: String
            let opened: UnsafeMutablePointer<redisContext>?
            switch url.endpoint {
            case .tcp(let host, let port):
                address = "\(host):\(port)"
                opened = redisConnectWithTimeout(host, Int32(port), Self.timeout)
            case .unix(let path):
                address = path
                opened = redisConnectUnixWithTimeout(path, Self.timeout)
            }
            guard let opened else { throw .connection("connect to \(address): out of memory", code: REDIS_ERR_OOM) }
            guard opened.pointee.err == 0, redisSetTimeout(opened, Self.timeout) == REDIS_OK else {
                let code = opened.pointee.err
                let detail = String(cString: lk_redis_error_text(opened))
                redisFree(opened)
                throw .connection("connect to \(address): \(detail)", code: code)
            }
            context = opened
            // A user name without a password is not sent: `AUTH name` alone would be taken for a password.
            if let password = url.password {
                try setUp(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            }
            if url.database != 0 {
                try setUp(["SELECT", String(url.database)])
            }
        }

        deinit {
            redisFree(context)
        }

        /// Names the failing step (never its arguments, which hold the password).
        private func setUp(_ arguments: [String]) throws(Failure) {
            do throws(Failure) {
                _ = try run(arguments)
            } catch {
                let code: Int32 = if case .connection(_, let code) = error { code } else { 0 }
                throw .connection("\(arguments[0]): \(error.message)", code: code)
            }
        }

        func run(_ arguments: [String]) throws(Failure) -> Reply {
            // All arguments in one buffer; hiredis takes pointers and lengths, so any bytes pass unchanged.
            var bytes: [UInt8] = []
            var lengths: [Int] = []
            for argument in arguments {
                bytes += argument.utf8
                lengths.append(argument.utf8.count)
            }
            bytes.append(0)  // keeps the buffer non-empty, so it has a base address
            let reply = bytes.withUnsafeBufferPointer { buffer in
                var offset = 0
                var pointers: [UnsafePointer<CChar>?] = lengths.map { length in
                    defer { offset += length }
                    return UnsafeRawPointer(buffer.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
                }
                return lk_redis_command(context, Int32(arguments.count), &pointers, lengths)
            }
            // No reply means the context failed and cannot be used again.
            guard let reply else { throw .connection(String(cString: lk_redis_error_text(context)), code: context.pointee.err) }
            defer { freeReplyObject(reply) }
            return try Self.convert(reply.pointee)
        }

        private static func convert(_ reply: redisReply) throws(Failure) -> Reply {
            let text = { String(decoding: UnsafeRawBufferPointer(start: reply.str, count: reply.len), as: UTF8.self) }
            switch reply.type {
            case REDIS_REPLY_STRING, REDIS_REPLY_STATUS: return .string(text())
            case REDIS_REPLY_INTEGER: return .integer(reply.integer)
            case REDIS_REPLY_NIL: return .null
            case REDIS_REPLY_ERROR: throw .command(text())
            case REDIS_REPLY_ARRAY:
                var elements: [Reply] = []
                for index in 0..<reply.elements {
                    guard let element = reply.element[index] else { throw .command("malformed array reply") }
                    elements.append(try convert(element.pointee))
                }
                return .array(elements)
            default: throw .command("unexpected reply type \(reply.type)")
            }
        }
    }
}
