import LKJWTTestSupport
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

/// The tracked participants of the SQLite and Redis stores (AS-MODE.md B4).
struct SystemTrackedParticipantStoreTests {
    @Test func sqlite() throws {
        let directory = try SQLiteJobStoreTests.TemporaryDirectory()
        try JobStoreConformance(
            store: SQLiteJobStore(path: directory.database), secondConnection: SQLiteJobStore(path: directory.database)
        ).runTrackedParticipantChecks()
    }

    @Test func redis() throws {
        try RedisJobStoreTests.withStoreOnAFreshServer { server, store in
            try JobStoreConformance(store: store, secondConnection: RedisJobStore(url: server.url)).runTrackedParticipantChecks()
        }
    }

    /// Upstream PR #235's field and value (notes §4.4): `[room, identity]` → snake_case JSON with chrono's
    /// RFC 3339; read as not connected, and written back in the same layout.
    @Test func redisUsesUpstreamsLayout() throws {
        try RedisJobStoreTests.withStoreOnAFreshServer { server, store in
            let upstream = """
                {"matrix_room_id":"!r:example.org","matrix_user_id":"@bob:example.org","livekit_room":"alias","livekit_identity":"lk-bob",\
                "registered_at":"2026-09-10T12:00:00.123456789Z"}
                """
            _ = try server.cli(["HSET", "lk-jwt:participants", #"["alias","lk-bob"]"#, upstream])
            let bob = try #require(try store.trackedParticipants().first)
            #expect(bob.matrixUserID == "@bob:example.org" && bob.matrixRoomID == "!r:example.org" && !bob.connected)
            #expect(bob.registeredAt == 1_789_041_600_123)
            try store.updateParticipant(bob.key) { $0?.connected = true }
            let written = try server.cli(["HGET", "lk-jwt:participants", #"["alias","lk-bob"]"#])
            #expect(written == """
                {"matrix_room_id":"!r:example.org","matrix_user_id":"@bob:example.org","livekit_room":"alias","livekit_identity":"lk-bob",\
                "registered_at":"2026-09-10T12:00:00.123Z","connected":true}
                """)
            #expect(try server.cli(["HLEN", "lk-jwt:jobs"]) == "0")
        }
    }

    /// A version 2 file gains the participants table in place; its jobs stay.
    @Test func sqliteMigratesVersionTwoFiles() throws {
        let directory = try SQLiteJobStoreTests.TemporaryDirectory()
        let job = JobStoreConformance.job("r", "kept")
        do {
            let store = try SQLiteJobStore(path: directory.database)
            #expect(try store.create(job, quota: .unlimited) == .created)
        }
        let raw = try SQLiteJobStoreTests.RawConnection(directory.database)
        raw.execute("DROP TABLE participants")
        raw.execute("DROP TABLE membership_sweep")
        raw.execute("UPDATE meta SET value = 2 WHERE name = 'schema_version'")
        let store = try SQLiteJobStore(path: directory.database)
        #expect(try store.update(job.key) { $0?.jobID } == job.jobID)
        let alice = JobStoreConformance.participant()
        try store.updateParticipant(alice.key) { $0 = alice }
        #expect(try store.trackedParticipants() == [alice])
        #expect(raw.text("SELECT value FROM meta WHERE name = 'schema_version'") == "3")
    }
}
