import CSQLite
import FoundationEssentials
import Glibc
import Logging
import Synchronization
import LKJWTTestSupport
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

struct SQLiteJobStoreTests {
    /// A fresh directory per test; removed when the test ends.
    final class TemporaryDirectory {
        let path: String

        init() throws {
            var template = Array("/tmp/lkjwt-sqlite-XXXXXX".utf8CString)
            path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        }

        deinit {
            try? FileManager.default.removeItem(atPath: path)
        }

        var database: String { path + "/jobs.sqlite3" }
    }

    /// A plain connection beside the store's, for what the store's API cannot do.
    final class RawConnection {
        let handle: OpaquePointer

        init(_ path: String) throws {
            var handle: OpaquePointer?
            #expect(sqlite3_open(path, &handle) == SQLITE_OK)
            self.handle = try #require(handle)
        }

        deinit {
            sqlite3_close(handle)
        }

        func execute(_ sql: String) {
            #expect(sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK, "\(String(cString: sqlite3_errmsg(handle)))")
        }

        func text(_ sql: String) -> String? {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { return nil }
            defer { sqlite3_finalize(statement) }
            guard sqlite3_step(statement) == SQLITE_ROW, let text = sqlite3_column_text(statement, 0) else { return nil }
            return String(cString: text)
        }
    }

    @Test func conformsToTheStoreContract() throws {
        let directory = try TemporaryDirectory()
        // Two connections on one file: two worker processes, as far as SQLite can tell.
        try JobStoreConformance(
            store: SQLiteJobStore(path: directory.database), secondConnection: SQLiteJobStore(path: directory.database)
        ).runJobChecks()
    }

    @Test func recordsSurviveReopening() throws {
        let directory = try TemporaryDirectory()
        let job = JobStoreConformance.job(alternatives: ["@alice:example.org:DEVICE"])
        do {
            let store = try SQLiteJobStore(path: directory.database)
            try store.update(job.key) { $0 = job }
            try store.writeHeartbeat(1_700_000_000_000)
        }
        let reopened = try SQLiteJobStore(path: directory.database)
        #expect(try reopened.update(job.key) { $0?.jobID } == job.jobID)
        #expect(try reopened.key(room: job.key.room, identity: "@alice:example.org:DEVICE") == job.key)
        #expect(try reopened.dueKeys(now: .max, limit: 10) == [job.key])
        #expect(try reopened.newestHeartbeat() == 1_700_000_000_000)
        #expect(reopened.name == "sqlite:\(directory.database)")
    }

    @Test func unparsableRecordsAreSkippedNotOverwritten() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.database)
        let key = JobKey(room: "r", identity: "i")
        // Due long ago: a scheduler would pick it up on every poll if it stayed in the due index.
        try RawConnection(directory.database).execute(
            "INSERT INTO jobs(storage_name, room, identity, record, next_due) VALUES('[\"r\",\"i\"]', 'r', 'i', '{not json', 5)")
        #expect(try store.dueKeys(now: .max, limit: 10) == [key])
        try JobStoreConformance(store: store, secondConnection: try SQLiteJobStore(path: directory.database)).unparsableRecordIsSkippedNotOverwritten(key)
    }

    /// A file that is not a database fails with SQLite's own code, not only its text.
    @Test func aCorruptFileKeepsSQLitesCode() throws {
        let directory = try TemporaryDirectory()
        let file = try #require(fopen(directory.database, "wb"))
        fputs(String(repeating: "not a database ", count: 400), file)
        fclose(file)
        do {
            _ = try SQLiteJobStore(path: directory.database)
            Issue.record("opened a file that is no database")
        } catch {
            #expect(error.cause == .library("sqlite", code: SQLITE_NOTADB))
        }
    }

    /// The delayed-leave jobs of one process over `store`. Accepting and claiming make no calls, so
    /// the clients get a real HTTP client they never use.
    static func jobs(over store: any JobStore) -> DelayedLeaveJobs {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let http = CurlHTTPClient(tls: TLSSettings(), logger: logger)
        let clock = SystemWallClock()
        return DelayedLeaveJobs(
            dependencies: .init(
                store: store, clientServerAPI: ClientServerAPIResolver(overrides: CSAPIURLOverrides(), http: http, clock: clock),
                roomService: RoomServiceClient(liveKitURL: "ws://sfu.test", apiKey: "k", apiSecret: "s", http: http, clock: clock),
                delayedEvents: DelayedEventClient(http: http, clock: clock), clock: clock, random: SystemRandomSource()),
            settings: JobMachine.Settings(sanityInterval: .zero), logger: logger)
    }

    /// Unparsable rows due long ago neither crash the scheduler nor crowd out real work: each is
    /// skipped once, taken off the due index and left in place.
    @Test func theSchedulerSkipsUnparsableRows() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.database)
        for index in 0..<20 {
            try RawConnection(directory.database).execute(
                "INSERT INTO jobs(storage_name, room, identity, record, next_due) VALUES('[\"r\",\"bad\(index)\"]', 'r', 'bad\(index)', '{\"Params\":1}', 5)")
        }
        let jobs = Self.jobs(over: store)
        #expect(jobs.accept(DelayedLeaveHandover(
            serverName: "example.org", delayID: "syd_good", delayTimeout: 60_000, roomAlias: "room", identity: "good")) == nil)
        var claimed: [JobMachine.Work] = []
        // Four per round out of the eight soonest due: six rounds reach every row.
        for _ in 0..<6 { claimed += jobs.claimDueWork(limit: 4) }
        #expect(claimed.map(\.delayID) == ["syd_good"])
        #expect(try store.dueKeys(now: jobs.nowMilliseconds + 1000, limit: 100).isEmpty, "claimed, and the bad rows unscheduled")
        #expect(try store.allRecords().count == 21)
    }

    /// A file of schema version 1 (before owners were kept) is migrated in place, its jobs intact and counted by server.
    @Test func migratesVersionOneFiles() throws {
        let directory = try TemporaryDirectory()
        let raw = try RawConnection(directory.database)
        let job = JobStoreConformance.job("r", "old")
        raw.execute("CREATE TABLE meta(name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)")
        raw.execute("INSERT INTO meta(name, value) VALUES('schema_version', 1)")
        raw.execute("""
            CREATE TABLE jobs(storage_name TEXT PRIMARY KEY NOT NULL, room TEXT NOT NULL, identity TEXT NOT NULL, record TEXT NOT NULL, next_due INTEGER)
            """)
        raw.execute("CREATE INDEX jobs_next_due ON jobs(next_due)")
        raw.execute("""
            CREATE TABLE job_identities(room TEXT NOT NULL, identity TEXT NOT NULL, storage_name TEXT NOT NULL, PRIMARY KEY(room, identity, storage_name))
            """)
        raw.execute("CREATE INDEX job_identities_storage_name ON job_identities(storage_name)")
        let record = job.record().replacing(#","OwnerUserId":"""#, with: "")
        raw.execute("INSERT INTO jobs VALUES('[\"r\",\"old\"]', 'r', 'old', '\(record)', 1000)")
        raw.execute("INSERT INTO job_identities VALUES('r', 'old', '[\"r\",\"old\"]')")

        let store = try SQLiteJobStore(path: directory.database)
        #expect(try store.update(job.key) { $0?.jobID } == job.jobID)
        #expect(try store.dueKeys(now: 5_000, limit: 10) == [job.key])
        #expect(try store.key(room: "r", identity: "old") == job.key)
        var newcomer = JobStoreConformance.owned("@new:example.org", 1)
        newcomer.serverName = job.serverName
        #expect(try store.create(newcomer, quota: JobQuota(perUser: 32, perServer: 1)) == .refused(.server))
        #expect(try RawConnection(directory.database).text("SELECT value FROM meta WHERE name = 'schema_version'") == "3")
    }

    @Test func createsMissingDirectoriesPrivately() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.path + "/lib/lkjwt-fcgi/jobs.sqlite3")
        try store.writeHeartbeat(1)
        for created in ["/lib", "/lib/lkjwt-fcgi"] {
            var status = stat()
            #expect(stat(directory.path + created, &status) == 0)
            #expect(status.st_mode & S_IFMT == S_IFDIR)
            #expect(status.st_mode & 0o777 == 0o700)
        }
    }

    @Test func uncreatableDirectoryIsReported() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path + "/file"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect {
            try SQLiteJobStore(path: file + "/state/jobs.sqlite3")
        } throws: { error in
            (error as? JobStoreError)?.message == "cannot create directory \"\(file)/state\": Not a directory"
        }
    }

    @Test func refusesAnUnknownSchemaVersion() throws {
        let directory = try TemporaryDirectory()
        _ = try SQLiteJobStore(path: directory.database)
        try RawConnection(directory.database).execute("UPDATE meta SET value = 4 WHERE name = 'schema_version'")
        #expect {
            try SQLiteJobStore(path: directory.database)
        } throws: { error in
            (error as? JobStoreError)?.message == "database schema version 4 is not supported (expected 3)"
        }
    }

    @Test func usesTheWriteAheadLog() throws {
        let directory = try TemporaryDirectory()
        _ = try SQLiteJobStore(path: directory.database)
        #expect(try RawConnection(directory.database).text("PRAGMA journal_mode") == "wal")
    }

    /// Another process in the middle of a write makes an update wait (busy timeout), not fail.
    @Test func updatesWaitForAnotherWriter() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteJobStore(path: directory.database)
        let job = JobStoreConformance.job()
        let writer = try RawConnection(directory.database)
        writer.execute("BEGIN IMMEDIATE")

        let clock = ContinuousClock()
        let start = clock.now
        let outcome = Mutex<(finished: ContinuousClock.Instant, error: JobStoreError?)?>(nil)
        let updater = Thread {
            do throws(JobStoreError) {
                try store.update(job.key) { $0 = job }
                outcome.withLock { $0 = (clock.now, nil) }
            } catch {
                outcome.withLock { $0 = (clock.now, error) }
            }
        }
        var pause = timespec(tv_sec: 0, tv_nsec: 300_000_000)
        nanosleep(&pause, nil)
        #expect(outcome.withLock { $0 } == nil, "the update must still be waiting")
        writer.execute("COMMIT")
        updater.join()

        let (finished, error) = try #require(outcome.withLock { $0 })
        #expect(error == nil)
        #expect(start.duration(to: finished) >= .milliseconds(300))
        #expect(try store.update(job.key) { $0?.version } == 1)
    }
}
