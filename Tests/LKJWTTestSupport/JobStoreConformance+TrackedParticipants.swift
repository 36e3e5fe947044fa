import Synchronization
import Testing

import LKJWTLogic

/// What every store must do with tracked participants and the sweep lease (AS-MODE.md B4), checked
/// the same way against each implementation.
extension JobStoreConformance {
    package static func participant(_ identity: String = "lk-alice", room: String = "alias", user: String = "@alice:example.org", at: Int64 = 1_000) -> TrackedParticipant {
        TrackedParticipant(matrixRoomID: "!room:example.org", matrixUserID: user, liveKitRoom: room, liveKitIdentity: identity, registeredAt: at)
    }

    package func runTrackedParticipantChecks() throws {
        try trackUpdateForget()
        try everyConnectionSeesTheSameParticipants()
        try concurrentParticipantUpdatesAreAtomic()
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
    func concurrentParticipantUpdatesAreAtomic() throws {
        let key = Self.participant().key
        try store.updateParticipant(key) { $0 = Self.participant(at: 0) }
        let stores = [store, secondConnection]
        let failures = Mutex(0)
        let threads = (0..<8).map { index in
            Thread {
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
