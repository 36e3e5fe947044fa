import CSQLite
import Glibc
import LKJWTLogic
import Synchronization

/// The default job store (contract §8.9): one SQLite file shared by every worker process of the host.
/// WAL lets readers run beside the single writer; each mutation starts with `BEGIN IMMEDIATE`, which
/// takes the write lock before the read of a read-modify-write, so concurrent writers queue on the
/// busy timeout instead of failing half-way with SQLITE_BUSY.
public final class SQLiteJobStore: JobStore {
    /// The contract asks for at least 5 s.
    static let busyTimeoutMilliseconds: Int32 = 5_000
    static let schemaVersion: Int64 = 2
    /// Additive steps from each older version to the next. A new file is created at version 1 and
    /// goes through them like an old one, so there is one way to reach the current schema.
    static let migrations: [(from: Int64, script: String)] = [(1, SQL.addJobSubjects)]

    public let name: String
    private let recoveryLockPath: String
    /// One connection per store, opened without SQLite's own mutex: this lock serialises its threads.
    private let connection: Mutex<Connection>
    /// flock excludes other open files only, not threads sharing this store's; this lock covers those.
    private let recoveryLock = Mutex(())

    public init(path: String) throws(JobStoreError) {
        name = "sqlite:\(path)"
        recoveryLockPath = path + ".recovery-lock"
        if let directory = Self.parentDirectory(of: path) { try Self.createDirectory(directory) }
        Self.createPrivately(path)
        let connection = try Connection(path: path)
        // Switching a new file to WAL does not wait for the busy timeout: workers that start
        // together would fail with "database is locked". The sidecar lock serialises them.
        let schemaLock = try Self.lockFile(recoveryLockPath)
        defer { close(schemaLock) }
        try Self.prepareSchema(connection)
        self.connection = Mutex(connection)
    }

    public func update<Result: Sendable>(_ key: JobKey, _ body: (inout DelayedLeaveJob?) -> Result) throws(JobStoreError) -> Result {
        let storageName = key.storageName
        var unparsable: DelayedLeaveJob.RecordError?
        let result = try locked("update") { connection throws(JobStoreError) -> Result? in
            try connection.immediateTransaction { () throws(JobStoreError) -> Result? in
                let record = try connection.rows(SQL.selectRecord, [.text(storageName)]) { $0.text(0) }.first ?? nil
                var job: DelayedLeaveJob?
                if let record {
                    do throws(DelayedLeaveJob.RecordError) {
                        job = try DelayedLeaveJob(record: record)
                    } catch {
                        // Left in place for an operator (or a newer version), but no longer due.
                        try connection.execute(SQL.unscheduleJob, [.text(storageName)])
                        unparsable = error
                        return nil
                    }
                }
                let before = job
                let result = body(&job)
                if job != before { try Self.write(job, over: before, key: key, on: connection) }
                return result
            }
        }
        if let unparsable { throw .unparsable(key, unparsable) }
        // Non-nil whenever the record parsed.
        return result!
    }

    public func create(_ job: DelayedLeaveJob, quota: JobQuota) throws(JobStoreError) -> JobCreation {
        let storageName = job.key.storageName
        return try locked("create") { connection throws(JobStoreError) in
            try connection.immediateTransaction { () throws(JobStoreError) -> JobCreation in
                let record = try connection.rows(SQL.selectRecord, [.text(storageName)]) { $0.text(0) }.first ?? nil
                let (creation, previous) = JobCreation.over(record)
                if record == nil {
                    // The write lock of BEGIN IMMEDIATE is held: no other creation can slip in between.
                    if let limit = quota.perUser, !job.ownerUserID.isEmpty,
                        try Self.count(SQL.countOwnerJobs, job.ownerUserID, on: connection) >= limit
                    {
                        return .refused(.user)
                    }
                    if let limit = quota.perServer, try Self.count(SQL.countServerJobs, job.serverName, on: connection) >= limit {
                        return .refused(.server)
                    }
                }
                try Self.write(job, over: previous, key: job.key, on: connection)
                return creation
            }
        }
    }

    /// Writes (or deletes) the job with its index rows, one version after `before`.
    private static func write(_ job: DelayedLeaveJob?, over before: DelayedLeaveJob?, key: JobKey, on connection: Connection) throws(JobStoreError) {
        let storageName = key.storageName
        try connection.execute(SQL.deleteIdentities, [.text(storageName)])
        guard var changed = job else {
            try connection.execute(SQL.deleteJob, [.text(storageName)])
            return
        }
        changed.version = (before?.version ?? 0) + 1
        try connection.execute(SQL.upsertJob, [
            .text(storageName), .text(key.room), .text(key.identity), .text(changed.record()), changed.nextDue.map { .integer($0) } ?? .null,
            .text(changed.ownerUserID), .text(changed.serverName),
        ])
        for identity in [key.identity] + changed.alternativeIdentities {
            try connection.execute(SQL.insertIdentity, [.text(key.room), .text(identity), .text(storageName)])
        }
    }

    private static func count(_ sql: String, _ value: String, on connection: Connection) throws(JobStoreError) -> Int {
        Int(try connection.rows(sql, [.text(value)]) { $0.integer(0) }.first.flatMap { $0 } ?? 0)
    }

    public func key(room: String, identity: String) throws(JobStoreError) -> JobKey? {
        try locked("key lookup") { connection throws(JobStoreError) in
            try connection.rows(SQL.selectKeyByIdentity, [.text(room), .text(identity)], Self.jobKey).first ?? nil
        }
    }

    public func dueKeys(now: Int64, limit: Int) throws(JobStoreError) -> [JobKey] {
        try locked("due keys") { connection throws(JobStoreError) in
            try connection.rows(SQL.selectDueKeys, [.integer(now), .integer(Int64(limit))], Self.jobKey).compactMap { $0 }
        }
    }

    public func allRecords() throws(JobStoreError) -> [(key: JobKey, job: Result<DelayedLeaveJob, DelayedLeaveJob.RecordError>)] {
        try locked("list") { connection throws(JobStoreError) in
            try connection.rows(SQL.selectAllRecords) { row -> (key: JobKey, job: Result<DelayedLeaveJob, DelayedLeaveJob.RecordError>)? in
                guard let key = Self.jobKey(row) else { return nil }
                let record = row.text(2) ?? ""
                return (key, Result { () throws(DelayedLeaveJob.RecordError) in try DelayedLeaveJob(record: record) })
            }
            .compactMap { $0 }
        }
    }

    public func delete(_ key: JobKey) throws(JobStoreError) {
        let storageName = key.storageName
        try locked("delete") { connection throws(JobStoreError) in
            try connection.immediateTransaction { () throws(JobStoreError) in
                try connection.execute(SQL.deleteIdentities, [.text(storageName)])
                try connection.execute(SQL.deleteJob, [.text(storageName)])
            }
        }
    }

    public func writeHeartbeat(_ now: Int64) throws(JobStoreError) {
        try locked("heartbeat") { connection throws(JobStoreError) in
            try connection.immediateTransaction { () throws(JobStoreError) in
                try connection.execute(SQL.upsertHeartbeat, [.integer(now)])
            }
        }
    }

    public func newestHeartbeat() throws(JobStoreError) -> Int64? {
        try locked("heartbeat") { connection throws(JobStoreError) in
            try connection.rows(SQL.selectHeartbeat) { $0.integer(0) }.first ?? nil
        }
    }

    public func renewLiveness(of owner: String, expires: Int64) throws(JobStoreError) {
        try locked("liveness") { connection throws(JobStoreError) in
            try connection.immediateTransaction { () throws(JobStoreError) in
                try connection.execute(SQL.upsertClaimOwner, [.text(owner), .integer(expires)])
            }
        }
    }

    public func removeLiveness(of owner: String, lapsedAt: Int64?) throws(JobStoreError) {
        try locked("liveness") { connection throws(JobStoreError) in
            try connection.immediateTransaction { () throws(JobStoreError) in
                try connection.execute(SQL.deleteClaimOwner, [.text(owner), lapsedAt.map { .integer($0) } ?? .null])
            }
        }
    }

    public func livenessRecords() throws(JobStoreError) -> [String: Int64] {
        try locked("liveness") { connection throws(JobStoreError) in
            var records: [String: Int64] = [:]
            for case let (owner?, expires?) in try connection.rows(SQL.selectClaimOwners, [], { ($0.text(0), $0.integer(1)) }) {
                records[owner] = expires
            }
            return records
        }
    }

    /// An flock on a sidecar file: unlike a lock row, the kernel releases it when the holder dies, so
    /// a crash during recovery cannot block every later start.
    public func withRecoveryLock<Result>(_ body: () throws(JobStoreError) -> Result) throws(JobStoreError) -> Result {
        try recoveryLock.withLock { _ throws(JobStoreError) in
            let descriptor = try Self.lockFile(recoveryLockPath)
            defer { close(descriptor) }
            return try body()
        }
    }

    /// Opens and flocks `path`; closing the descriptor releases the lock.
    private static func lockFile(_ path: String) throws(JobStoreError) -> Int32 {
        let descriptor: Int32
        do {
            descriptor = try SystemCall.run("open") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        } catch {
            throw systemError("cannot open lock file \(path.goQuoted)", error)
        }
        do {
            try SystemCall.run("flock") { flock(descriptor, LOCK_EX) }
        } catch {
            close(descriptor)
            throw systemError("cannot lock \(path.goQuoted)", error)
        }
        return descriptor
    }

    /// Runs `body` on the connection, naming the operation in its errors for the logs.
    private func locked<Result: Sendable>(_ operation: String, _ body: (Connection) throws(JobStoreError) -> Result) throws(JobStoreError) -> Result {
        do {
            return try connection.withLock { connection throws(JobStoreError) in try body(connection) }
        } catch {
            throw JobStoreError("sqlite \(operation): \(error.message)", kind: error.kind, cause: error.cause)
        }
    }

    private static func jobKey(_ row: Connection.Row) -> JobKey? {
        guard let room = row.text(0), let identity = row.text(1) else { return nil }
        return JobKey(room: room, identity: identity)
    }

    // MARK: Opening

    private static func prepareSchema(_ connection: Connection) throws(JobStoreError) {
        sqlite3_busy_timeout(connection.handle, busyTimeoutMilliseconds)
        let mode = try connection.rows("PRAGMA journal_mode = WAL") { $0.text(0) }.first ?? nil
        // SQLite keeps the old mode where WAL is impossible (e.g. no shared memory); workers would
        // then block each other's reads, which the contract rules out.
        guard mode == "wal" else { throw JobStoreError("cannot switch to WAL journal mode (mode is \(mode ?? "unknown"))") }
        // In WAL mode NORMAL loses at most the last commits on power failure, never consistency.
        try connection.execute("PRAGMA synchronous = NORMAL")
        try connection.immediateTransaction { () throws(JobStoreError) in
            try connection.execute(SQL.createMeta)
            var version: Int64
            if let stored = try connection.rows(SQL.selectSchemaVersion, [], { $0.integer(0) }).first ?? nil {
                version = stored
            } else {
                try connection.executeScript(SQL.createSchema)
                try connection.execute(SQL.insertSchemaVersion, [.integer(1)])
                version = 1
            }
            guard (1...schemaVersion).contains(version) else {
                throw JobStoreError("database schema version \(version) is not supported (expected \(schemaVersion))")
            }
            for migration in migrations where migration.from >= version {
                try connection.executeScript(migration.script)
                version = migration.from + 1
            }
            try connection.execute(SQL.updateSchemaVersion, [.integer(version)])
            try connection.execute(SQL.createClaimOwners)
        }
    }

    private static func parentDirectory(of path: String) -> String? {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return nil }
        return String(path[..<slash])
    }

    /// Creates `directory` and missing parents with mode 0700: the store names rooms and members,
    /// which other local users have no business reading.
    private static func createDirectory(_ directory: String) throws(JobStoreError) {
        var status = stat()
        do {
            try SystemCall.run("stat") { stat(directory, &status) }
            return
        } catch {
            guard error.errno == ENOENT else { throw systemError("cannot create directory \(directory.goQuoted)", error) }
        }
        if let parent = parentDirectory(of: directory) { try createDirectory(parent) }
        do {
            try SystemCall.run("mkdir") { mkdir(directory, 0o700) }
        } catch {
            // EEXIST: another worker process created it meanwhile.
            guard error.errno == EEXIST else { throw systemError("cannot create directory \(directory.goQuoted)", error) }
        }
    }

    /// Creates a missing database file with mode 0600 before SQLite would create it 0644: delay IDs are
    /// capabilities (contract §13.6). SQLite gives `-wal` and `-shm` the mode of the database file. An
    /// existing file is left as it is; failures are left to SQLite's open, which reports them.
    private static func createPrivately(_ path: String) {
        guard !path.isEmpty, !path.hasPrefix("file:") else { return }
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 { close(descriptor) }
    }

    private static func systemError(_ what: String, _ error: SystemCallError) -> JobStoreError {
        JobStoreError("\(what): \(error.reason)", cause: .system(error))
    }
}

extension SQLiteJobStore {
    /// Every statement; values are always bound, never spliced in.
    private enum SQL {
        static let createMeta = "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)"
        static let selectSchemaVersion = "SELECT value FROM meta WHERE name = 'schema_version'"
        static let insertSchemaVersion = "INSERT INTO meta(name, value) VALUES('schema_version', ?1)"
        static let updateSchemaVersion = "UPDATE meta SET value = ?1 WHERE name = 'schema_version'"
        /// Version 1. Without IF NOT EXISTS, so that a foreign database with such tables is refused.
        static let createSchema = """
            CREATE TABLE jobs(
                storage_name TEXT PRIMARY KEY NOT NULL, room TEXT NOT NULL, identity TEXT NOT NULL,
                record TEXT NOT NULL, next_due INTEGER);
            CREATE INDEX jobs_next_due ON jobs(next_due);
            CREATE TABLE job_identities(
                room TEXT NOT NULL, identity TEXT NOT NULL, storage_name TEXT NOT NULL,
                PRIMARY KEY(room, identity, storage_name));
            CREATE INDEX job_identities_storage_name ON job_identities(storage_name);
            """
        /// 1 → 2: owner and server name beside the record, indexed, for the quotas of §13.4. Jobs of
        /// version 1 had no owner; their server name is taken from their records.
        static let addJobSubjects = """
            ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
            ALTER TABLE jobs ADD COLUMN server_name TEXT NOT NULL DEFAULT '';
            UPDATE jobs SET server_name = coalesce(json_extract(record, '$.Params.ServerName'), '') WHERE json_valid(record);
            CREATE INDEX jobs_owner ON jobs(owner);
            CREATE INDEX jobs_server_name ON jobs(server_name);
            """

        /// Liveness records of claim owners (§8.10 rule 4, rev. 2). Created at every open, whatever the
        /// schema version: an additive table of short-lived rows, which older versions simply ignore.
        static let createClaimOwners = "CREATE TABLE IF NOT EXISTS claim_owners(owner TEXT PRIMARY KEY NOT NULL, expires INTEGER NOT NULL)"
        static let upsertClaimOwner = """
            INSERT INTO claim_owners(owner, expires) VALUES(?1, ?2)
            ON CONFLICT(owner) DO UPDATE SET expires = excluded.expires
            """
        /// ?2 NULL: unconditionally (a graceful stop).
        static let deleteClaimOwner = "DELETE FROM claim_owners WHERE owner = ?1 AND (?2 IS NULL OR expires <= ?2)"
        static let selectClaimOwners = "SELECT owner, expires FROM claim_owners"

        static let selectRecord = "SELECT record FROM jobs WHERE storage_name = ?1"
        static let upsertJob = """
            INSERT INTO jobs(storage_name, room, identity, record, next_due, owner, server_name) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)
            ON CONFLICT(storage_name) DO UPDATE SET
                record = excluded.record, next_due = excluded.next_due, owner = excluded.owner, server_name = excluded.server_name
            """
        static let unscheduleJob = "UPDATE jobs SET next_due = NULL WHERE storage_name = ?1"
        static let countOwnerJobs = "SELECT count(*) FROM jobs WHERE owner = ?1"
        static let countServerJobs = "SELECT count(*) FROM jobs WHERE server_name = ?1"
        static let deleteJob = "DELETE FROM jobs WHERE storage_name = ?1"
        /// OR IGNORE: an alternative identity may repeat the main one.
        static let insertIdentity = "INSERT OR IGNORE INTO job_identities(room, identity, storage_name) VALUES(?1, ?2, ?3)"
        static let deleteIdentities = "DELETE FROM job_identities WHERE storage_name = ?1"
        /// A job watching `identity` as its main identity wins over one watching it as an alternative.
        static let selectKeyByIdentity = """
            SELECT jobs.room, jobs.identity FROM job_identities JOIN jobs USING(storage_name)
            WHERE job_identities.room = ?1 AND job_identities.identity = ?2
            ORDER BY jobs.identity = ?2 DESC LIMIT 1
            """
        static let selectDueKeys = "SELECT room, identity FROM jobs WHERE next_due <= ?1 ORDER BY next_due, storage_name LIMIT ?2"
        static let selectAllRecords = "SELECT room, identity, record FROM jobs ORDER BY storage_name"
        /// Keeps the newest value: a process with a lagging clock must not make schedulers look dead.
        static let upsertHeartbeat = """
            INSERT INTO meta(name, value) VALUES('heartbeat', ?1)
            ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)
            """
        static let selectHeartbeat = "SELECT value FROM meta WHERE name = 'heartbeat'"
    }

    /// One SQLite connection and its prepared statements; callers serialise access.
    private final class Connection {
        enum Parameter {
            case text(String)
            case integer(Int64)
            case null
        }

        struct Row {
            let statement: OpaquePointer

            func text(_ column: Int32) -> String? {
                guard let bytes = sqlite3_column_text(statement, column) else { return nil }
                return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(statement, column))), as: UTF8.self)
            }

            func integer(_ column: Int32) -> Int64? {
                sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, column)
            }
        }

        let handle: OpaquePointer
        private var statements: [String: OpaquePointer] = [:]

        init(path: String) throws(JobStoreError) {
            var handle: OpaquePointer?
            let status = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
            guard status == SQLITE_OK, let handle else {
                let code = handle.map { sqlite3_extended_errcode($0) } ?? status
                let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
                sqlite3_close_v2(handle)
                throw JobStoreError(message, cause: .library("sqlite", code: code))
            }
            self.handle = handle
        }

        deinit {
            for statement in statements.values { sqlite3_finalize(statement) }
            sqlite3_close_v2(handle)
        }

        func rows<Value>(_ sql: String, _ parameters: [Parameter] = [], _ read: (Row) -> Value) throws(JobStoreError) -> [Value] {
            let statement = try prepared(sql)
            // A statement left unreset would keep its read transaction, pinning the WAL.
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            for (index, parameter) in parameters.enumerated() {
                let position = Int32(index + 1)
                let status =
                    switch parameter {
                    case .text(let value): sqlite3_bind_text(statement, position, value, Int32(value.utf8.count), lk_sqlite_transient())
                    case .integer(let value): sqlite3_bind_int64(statement, position, value)
                    case .null: sqlite3_bind_null(statement, position)
                    }
                guard status == SQLITE_OK else { throw failure() }
            }
            var values: [Value] = []
            while true {
                switch sqlite3_step(statement) {
                case SQLITE_ROW: values.append(read(Row(statement: statement)))
                case SQLITE_DONE: return values
                default: throw failure()
                }
            }
        }

        func execute(_ sql: String, _ parameters: [Parameter] = []) throws(JobStoreError) {
            _ = try rows(sql, parameters) { _ in () }
        }

        /// For the one-off schema creation, which is several statements.
        func executeScript(_ sql: String) throws(JobStoreError) {
            guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else { throw failure() }
        }

        /// Runs `body` in a write transaction, rolled back if anything fails.
        func immediateTransaction<Result>(_ body: () throws(JobStoreError) -> Result) throws(JobStoreError) -> Result {
            try execute("BEGIN IMMEDIATE")
            do {
                let result = try body()
                try execute("COMMIT")
                return result
            } catch {
                // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL).
                if sqlite3_get_autocommit(handle) == 0 { try? execute("ROLLBACK") }
                throw error
            }
        }

        private func prepared(_ sql: String) throws(JobStoreError) -> OpaquePointer {
            if let statement = statements[sql] { return statement }
            var statement: OpaquePointer?
            guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
                throw failure()
            }
            statements[sql] = statement
            return statement
        }

        /// The connection's last error: SQLITE_BUSY (waited out the busy timeout) and SQLITE_CORRUPT
        /// call for different actions, so the code travels with the text.
        private func failure() -> JobStoreError {
            let code = sqlite3_extended_errcode(handle)
            return JobStoreError(String(cString: sqlite3_errmsg(handle)), cause: .library("sqlite", code: code))
        }
    }
}
