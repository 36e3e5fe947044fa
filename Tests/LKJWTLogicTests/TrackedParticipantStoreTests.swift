import Synchronization
import Testing

@testable import LKJWTLogic

/// What every store must do with tracked participants and the sweep lease (AS-MODE.md B4), checked
/// the same way against each implementation; `secondConnection` is another process's view.
struct TrackedParticipantStoreConformance {
    let store: any JobStore
    let secondConnection: any JobStore

    static func participant(_ identity: String = "lk-alice", room: String = "alias", user: String = "@alice:example.org", at: Int64 = 1_000) -> TrackedParticipant {
        TrackedParticipant(matrixRoomID: "!room:example.org", matrixUserID: user, liveKitRoom: room, liveKitIdentity: identity, registeredAt: at)
    }

    func runAll() throws {
        try trackUpdateForget()
        try everyConnectionSeesTheSameParticipants()
        try concurrentUpdatesAreAtomic()
        try oneSweepPerInterval()
        try aGoneSweepersLeaseIsTakenOver()
        try participantsAndJobsAreSeparate()
    }

    func trackUpdateForget() throws {
        let alice = Self.participant()
        #expect(try store.updateParticipant(alice.key) { $0 } == nil)
        try store.updateParticipant(alice.key) { $0 = alice }
        #expect(try secondConnection.updateParticipant(alice.key) { $0 } == alice)
        try secondConnection.updateParticipant(alice.key) {
            $0?.connected = true
            $0?.pendingRemoval = .participant
        }
        let changed = try #require(try store.updateParticipant(alice.key) { $0 })
        #expect(changed.connected && changed.pendingRemoval == .participant && changed.registeredAt == 1_000)
        try store.updateParticipant(alice.key) { $0 = nil }
        #expect(try secondConnection.trackedParticipants().isEmpty)
    }

    func everyConnectionSeesTheSameParticipants() throws {
        let people = (0..<5).map { Self.participant("lk-\($0)", room: $0 < 3 ? "one" : "two") }
        for person in people { try store.updateParticipant(person.key) { $0 = person } }
        #expect(Set(try secondConnection.trackedParticipants().map(\.key)) == Set(people.map(\.key)))
        #expect(try secondConnection.trackedParticipants().filter { $0.liveKitRoom == "one" }.count == 3)
        for person in people { try secondConnection.updateParticipant(person.key) { $0 = nil } }
        #expect(try store.trackedParticipants().isEmpty)
    }

    /// Read-modify-write from many threads on two connections loses no update.
    func concurrentUpdatesAreAtomic() throws {
        let key = Self.participant().key
        try store.updateParticipant(key) { $0 = Self.participant(at: 0) }
        let stores = [store, secondConnection]
        let failures = Mutex(0)
        let threads = (0..<8).compactMap { index in
            PosixThread.start {
                for _ in 0..<25 {
                    do {
                        try stores[index % 2].updateParticipant(key) { $0?.registeredAt += 1 }
                    } catch {
                        failures.withLock { $0 += 1 }
                    }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(failures.withLock { $0 } == 0)
        #expect(try store.updateParticipant(key) { $0?.registeredAt } == 200)
        try store.updateParticipant(key) { $0 = nil }
    }

    func oneSweepPerInterval() throws {
        let claim = { (store: any JobStore, owner: String, now: Int64) throws -> MembershipSweepLease.Claim in
            try store.claimMembershipSweep(owner: owner, now: now, interval: 2_000, lease: 60_000, goneOwners: [])
        }
        #expect(try claim(store, "a", 10_000) == .claimed)
        // Another process, while a's sweep runs and after it ended: not before the interval is over.
        if case .claimed = try claim(secondConnection, "b", 10_100) { Issue.record("two sweeps in one interval") }
        try store.releaseMembershipSweep(owner: "a")
        #expect(try claim(secondConnection, "b", 11_000) == .notDue(retryAt: 12_000))
        #expect(try claim(secondConnection, "b", 12_000) == .claimed)
        // b's sweep outlasts the interval: nobody starts a second one beside it.
        if case .claimed = try claim(store, "a", 14_500) { Issue.record("a sweep started beside a running one") }
        try secondConnection.releaseMembershipSweep(owner: "b")
        #expect(try claim(store, "a", 14_600) == .claimed)
        // Releasing someone else's lease does nothing.
        try secondConnection.releaseMembershipSweep(owner: "b")
        if case .claimed = try claim(secondConnection, "b", 17_000) { Issue.record("a lease was released by a stranger") }
        try store.releaseMembershipSweep(owner: "a")
    }

    func aGoneSweepersLeaseIsTakenOver() throws {
        let later: Int64 = 1_000_000
        #expect(try store.claimMembershipSweep(owner: "dying", now: later, interval: 2_000, lease: 60_000, goneOwners: []) == .claimed)
        if case .claimed = try secondConnection.claimMembershipSweep(owner: "heir", now: later + 2_000, interval: 2_000, lease: 60_000, goneOwners: []) {
            Issue.record("a live owner's lease was taken")
        }
        #expect(try secondConnection.claimMembershipSweep(owner: "heir", now: later + 2_000, interval: 2_000, lease: 60_000, goneOwners: ["dying"]) == .claimed)
        try secondConnection.releaseMembershipSweep(owner: "heir")
    }

    func participantsAndJobsAreSeparate() throws {
        let alice = Self.participant()
        try store.updateParticipant(alice.key) { $0 = alice }
        #expect(try store.allRecords().isEmpty)
        #expect(try store.key(room: alice.liveKitRoom, identity: alice.liveKitIdentity) == nil)
        try store.updateParticipant(alice.key) { $0 = nil }
    }
}

struct TrackedParticipantStoreTests {
    @Test func inMemory() throws {
        let store = InMemoryJobStore()
        try TrackedParticipantStoreConformance(store: store, secondConnection: store).runAll()
    }

    @Test func sqlite() throws {
        let directory = try SQLiteJobStoreTests.TemporaryDirectory()
        try TrackedParticipantStoreConformance(
            store: SQLiteJobStore(path: directory.database), secondConnection: SQLiteJobStore(path: directory.database)
        ).runAll()
    }

    @Test func redis() throws {
        let server = try RedisServer()
        defer { server.stop() }
        try TrackedParticipantStoreConformance(store: RedisJobStore(url: server.url), secondConnection: RedisJobStore(url: server.url)).runAll()
    }

    /// Upstream PR #235's field and value (notes §4.4): `[room, identity]` → snake_case JSON with chrono's
    /// RFC 3339; read as not connected, and written back in the same layout.
    @Test func redisUsesUpstreamsLayout() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try RedisJobStore(url: server.url)
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

    /// A record that cannot be read is neither listed nor deleted by a nil; a new token replaces it.
    @Test(arguments: ["{not json", #"{"matrix_room_id":1}"#, #"{"matrix_room_id":"!r","matrix_user_id":"@u","livekit_room":"other","livekit_identity":"i","registered_at":"2026-09-10T12:00:00Z"}"#])
    func unreadableRecordsAreSkipped(record: String) throws {
        let store = InMemoryJobStore()
        let key = JobKey(room: "alias", identity: "i")
        store.storeRawParticipant(key, record)
        #expect(try store.trackedParticipants().isEmpty)
        #expect(try store.updateParticipant(key) { $0 } == nil)
        let fresh = TrackedParticipantStoreConformance.participant("i")
        try store.updateParticipant(key) { $0 = fresh }
        #expect(try store.trackedParticipants() == [fresh])
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
        let alice = TrackedParticipantStoreConformance.participant()
        try store.updateParticipant(alice.key) { $0 = alice }
        #expect(try store.trackedParticipants() == [alice])
        #expect(raw.text("SELECT value FROM meta WHERE name = 'schema_version'") == "3")
    }
}
