import Glibc
import Synchronization
import Testing

import LKJWTLogic

/// What every `JobStore` must do, checked the same way against each implementation. `makeStore`
/// returns a fresh, empty store; `secondConnection` another handle on the same storage (another
/// process, as far as the store can tell).
package struct JobStoreConformance {
    let store: any JobStore
    let secondConnection: any JobStore

    package init(store: any JobStore, secondConnection: any JobStore) {
        self.store = store
        self.secondConnection = secondConnection
    }

    package static func job(_ room: String = "room", _ identity: String = "identity", alternatives: [String] = [], due: Int64 = 1_000) -> DelayedLeaveJob {
        var job = DelayedLeaveJob(
            key: JobKey(room: room, identity: identity), alternativeIdentities: alternatives, jobID: "JOB\(room)\(identity)",
            serverName: "example.org", delayID: "syd_\(identity)", delayTimeout: 8000, restartedAt: 500)
        job.waitingTimerDue = due
        job.lookup = Activity(due: due + 5, sequenceStart: 500, maxElapsed: 8000)
        return job
    }

    package func runJobChecks() throws {
        try createReadReplaceDelete()
        try unchangedJobsAreNotRewritten()
        try identityLookup()
        try dueOrdering()
        try claimsCountAsDueWhenTheyExpire()
        try heartbeat()
        try livenessRecords()
        try claimsOfLiveOwnersAreWaitedForAndThoseOfGoneOwnersTakenAtOnce()
        try expiredJobsArePurgedUnlessHeld()
        try concurrentUpdatesAreAtomic()
        try recoveryLockExcludesOtherConnections()
        try createReportsWhatItReplaced()
        try ownerCapCountsLiveJobsOnly()
        try serverCapAppliesOnlyWhenAsked()
        try concurrentCreationsNeverOvershootTheCap()
        try ownerAndServerSurviveUpdates()
        try applicationServiceOwnerIsStored()
    }

    /// AS-MODE.md B3: a job of the application-service endpoints keeps its owner and that it acts
    /// as the owner, in every store and across connections.
    func applicationServiceOwnerIsStored() throws {
        var job = Self.owned("@alice:hs.example.com", 0, server: "hs.example.com")
        job.actsAsOwner = true
        #expect(try store.create(job, quota: .standard(serverAdmittedByWildcard: false)) == .created)
        let stored = try secondConnection.update(job.key) { $0 }
        #expect(stored?.ownerUserID == "@alice:hs.example.com")
        #expect(stored?.actsAsOwner == true)
        #expect(stored?.serverName == "hs.example.com")
        try store.delete(job.key)
    }

    package static func owned(_ owner: String, _ index: Int, server: String = "example.org") -> DelayedLeaveJob {
        var job = Self.job("quota-room-\(index)", "\(owner)-\(index)")
        job.ownerUserID = owner
        job.serverName = server
        return job
    }

    func createReportsWhatItReplaced() throws {
        let job = Self.owned("@creator:example.org", 0)
        #expect(try store.create(job, quota: .unlimited) == .created)
        var second = job
        second.jobID = "SECOND"
        #expect(try secondConnection.create(second, quota: .unlimited) == .replaced(jobID: job.jobID))
        let stored = try #require(try store.update(job.key) { $0 })
        #expect(stored.jobID == "SECOND")
        #expect(stored.version == 2)
        #expect(stored.ownerUserID == "@creator:example.org")
        try store.delete(job.key)
    }

    func ownerCapCountsLiveJobsOnly() throws {
        let quota = JobQuota(perUser: 3, perServer: nil)
        let jobs = (0..<4).map { Self.owned("@capped:example.org", $0) }
        for job in jobs.prefix(3) { #expect(try store.create(job, quota: quota) == .created) }
        #expect(try secondConnection.create(jobs[3], quota: quota) == .refused(.user))
        #expect(try store.update(jobs[3].key) { $0 } == nil, "a refused creation writes nothing")
        // Replacing an existing key is never a new job; other owners are not affected.
        var replacement = jobs[0]
        replacement.jobID = "REPLACEMENT"
        #expect(try secondConnection.create(replacement, quota: quota) == .replaced(jobID: jobs[0].jobID))
        #expect(try store.create(Self.owned("@other:example.org", 9), quota: quota) == .created)
        // A job without owner counts for nobody.
        #expect(try store.create(Self.owned("", 10), quota: quota) == .created)
        // A job that ended frees its place.
        try store.update(jobs[1].key) { $0 = nil }
        #expect(try secondConnection.create(jobs[3], quota: quota) == .created)
        #expect(try store.create(Self.owned("@capped:example.org", 5), quota: quota) == .refused(.user))
        for job in jobs + [Self.owned("@other:example.org", 9), Self.owned("", 10)] { try store.delete(job.key) }
        #expect(try store.allRecords().isEmpty)
    }

    func serverCapAppliesOnlyWhenAsked() throws {
        let capped = JobQuota(perUser: 32, perServer: 2)
        let jobs = (0..<3).map { Self.owned("@user\($0):busy.example", $0, server: "busy.example") }
        #expect(try store.create(jobs[0], quota: capped) == .created)
        #expect(try store.create(jobs[1], quota: capped) == .created)
        #expect(try secondConnection.create(jobs[2], quota: capped) == .refused(.server))
        #expect(try store.create(Self.owned("@user:quiet.example", 7, server: "quiet.example"), quota: capped) == .created)
        // The same server, listed explicitly: no per-server cap.
        #expect(try store.create(jobs[2], quota: .standard(serverAdmittedByWildcard: false)) == .created)
        for job in jobs + [Self.owned("@user:quiet.example", 7, server: "quiet.example")] { try store.delete(job.key) }
    }

    /// The count and the write are one atomic step: racing creations on two connections stop at the cap.
    func concurrentCreationsNeverOvershootTheCap() throws {
        let quota = JobQuota(perUser: 5, perServer: nil)
        let stores = [store, secondConnection]
        let outcomes = Mutex<[JobCreation]>([])
        DispatchApply.concurrentPerform(iterations: 16) { index in
            let outcome = (try? stores[index % 2].create(Self.owned("@racer:example.org", index), quota: quota))
            outcomes.withLock { $0.append(outcome ?? .replacedUnparsable(reason: "store error")) }
        }
        let results = outcomes.withLock { $0 }
        #expect(results.filter { $0 == .created }.count == 5)
        #expect(results.filter { $0 == .refused(.user) }.count == 11)
        #expect(try store.allRecords().count == 5)
        for index in 0..<16 { try store.delete(Self.owned("@racer:example.org", index).key) }
    }

    func ownerAndServerSurviveUpdates() throws {
        let job = Self.owned("@kept:example.org", 0, server: "kept.example")
        #expect(try store.create(job, quota: .unlimited) == .created)
        try store.update(job.key) { $0?.state = .connected }
        let quota = JobQuota(perUser: 1, perServer: 1)
        #expect(try secondConnection.create(Self.owned("@kept:example.org", 1, server: "other.example"), quota: quota) == .refused(.user))
        #expect(try secondConnection.create(Self.owned("@new:example.org", 2, server: "kept.example"), quota: quota) == .refused(.server))
        try store.delete(job.key)
        #expect(try secondConnection.create(Self.owned("@kept:example.org", 1, server: "kept.example"), quota: quota) == .created)
        try store.delete(Self.owned("@kept:example.org", 1).key)
    }

    /// An unparsable record under `key` (written raw by the caller): read neither as a job nor as
    /// absent, taken off the due list, never overwritten by an update, replaced by a creation.
    package func unparsableRecordIsSkippedNotOverwritten(_ key: JobKey) throws {
        #expect(try store.allRecords().contains { $0.key == key })
        #expect(throws: JobStoreError.self) { try store.update(key) { _ in () } }
        do {
            try store.update(key) { $0 = Self.job(key.room, key.identity) }
            Issue.record("an update must not overwrite an unparsable record")
        } catch {
            #expect(error.kind == .unparsableRecord)
        }
        guard case .failure? = try store.allRecords().first(where: { $0.key == key })?.job else {
            Issue.record("the unparsable record must still be there")
            return
        }
        #expect(try secondConnection.dueKeys(now: .max, limit: 10).contains(key) == false)
        let replacement = Self.job(key.room, key.identity)
        guard case .replacedUnparsable = try store.create(replacement, quota: JobQuota(perUser: 0, perServer: 0)) else {
            Issue.record("a creation replaces an unparsable record, without counting as new")
            return
        }
        #expect(try secondConnection.update(key) { $0?.jobID } == replacement.jobID)
        try store.delete(key)
    }

    func createReadReplaceDelete() throws {
        let original = Self.job()
        try store.update(original.key) { $0 = original }
        let stored = try #require(try secondConnection.update(original.key) { $0 })
        #expect(stored.jobID == original.jobID)
        #expect(stored.version == 1)
        var expected = original
        expected.version = 1
        #expect(stored == expected)

        var replacement = Self.job()
        replacement.jobID = "NEWJOB"
        let replaced = try store.update(original.key) { job -> String? in
            defer { job = replacement }
            return job?.jobID
        }
        #expect(replaced == original.jobID)
        #expect(try secondConnection.update(original.key) { $0?.jobID } == "NEWJOB")
        #expect(try secondConnection.update(original.key) { $0?.version } == 2)

        try store.update(original.key) { $0 = nil }
        #expect(try secondConnection.update(original.key) { $0 } == nil)
        #expect(try store.allRecords().isEmpty)
    }

    func unchangedJobsAreNotRewritten() throws {
        let job = Self.job("quiet")
        try store.update(job.key) { $0 = job }
        for _ in 0..<3 { _ = try store.update(job.key) { $0?.jobID } }
        #expect(try store.update(job.key) { $0?.version } == 1)
        try store.delete(job.key)
        #expect(try store.update(job.key) { $0 } == nil)
    }

    func identityLookup() throws {
        let job = Self.job("room-a", "hashed", alternatives: ["@alice:example.org:DEVICE"])
        try store.update(job.key) { $0 = job }
        #expect(try secondConnection.key(room: "room-a", identity: "hashed") == job.key)
        #expect(try secondConnection.key(room: "room-a", identity: "@alice:example.org:DEVICE") == job.key)
        #expect(try secondConnection.key(room: "room-b", identity: "@alice:example.org:DEVICE") == nil)
        #expect(try secondConnection.key(room: "room-a", identity: "someone") == nil)
        // A replacement without the alternative identity drops it from the index.
        var replacement = job
        replacement.alternativeIdentities = []
        try store.update(job.key) { $0 = replacement }
        #expect(try secondConnection.key(room: "room-a", identity: "@alice:example.org:DEVICE") == nil)
        try store.update(job.key) { $0 = nil }
        #expect(try secondConnection.key(room: "room-a", identity: "hashed") == nil)
    }

    func dueOrdering() throws {
        let late = Self.job("r", "late", due: 3_000)
        let early = Self.job("r", "early", due: 1_000)
        let future = Self.job("r", "future", due: 90_000)
        for job in [late, early, future] { try store.update(job.key) { $0 = job } }
        #expect(try secondConnection.dueKeys(now: 5_000, limit: 10) == [early.key, late.key])
        #expect(try secondConnection.dueKeys(now: 5_000, limit: 1) == [early.key])
        #expect(try secondConnection.dueKeys(now: 999, limit: 10).isEmpty)
        // Moving a job's due time moves it in the index.
        try store.update(early.key) { job in
            job?.waitingTimerDue = 95_000
            job?.lookup?.due = 95_000
        }
        #expect(try secondConnection.dueKeys(now: 5_000, limit: 10) == [late.key])
        for job in [late, early, future] { try store.delete(job.key) }
        #expect(try secondConnection.dueKeys(now: .max, limit: 10).isEmpty)
    }

    func claimsCountAsDueWhenTheyExpire() throws {
        var job = Self.job("claimed", due: 1_000)
        job.waitingTimerDue = nil
        job.lookup?.claim = Claim(owner: "worker-1", expires: 31_000)
        try store.update(job.key) { $0 = job }
        #expect(try store.dueKeys(now: 5_000, limit: 10).isEmpty)
        #expect(try store.dueKeys(now: 31_000, limit: 10) == [job.key])
        try store.delete(job.key)
    }

    func heartbeat() throws {
        #expect(try store.newestHeartbeat() == nil)
        try store.writeHeartbeat(1_700_000_000_000)
        #expect(try secondConnection.newestHeartbeat() == 1_700_000_000_000)
        try secondConnection.writeHeartbeat(1_700_000_005_000)
        #expect(try store.newestHeartbeat() == 1_700_000_005_000)
    }

    func livenessRecords() throws {
        #expect(try store.livenessRecords().isEmpty)
        try store.renewLiveness(of: "123-abc", expires: 10_000)
        try store.renewLiveness(of: "456-def", expires: 12_000)
        #expect(try secondConnection.livenessRecords() == ["123-abc": 10_000, "456-def": 12_000])
        try secondConnection.renewLiveness(of: "123-abc", expires: 20_000)
        #expect(try store.livenessRecords()["123-abc"] == 20_000)
        // An owner that renewed after the lapse was seen is kept; a lapsed one goes.
        try store.removeLiveness(of: "123-abc", lapsedAt: 15_000)
        try store.removeLiveness(of: "456-def", lapsedAt: 15_000)
        #expect(try secondConnection.livenessRecords() == ["123-abc": 20_000])
        try store.removeLiveness(of: "123-abc", lapsedAt: nil)
        try store.removeLiveness(of: "never-seen", lapsedAt: nil)
        #expect(try secondConnection.livenessRecords().isEmpty)
    }

    /// §8.10 rule 4 (rev. 2), through the store as the schedulers use it.
    func claimsOfLiveOwnersAreWaitedForAndThoseOfGoneOwnersTakenAtOnce() throws {
        let now: Int64 = 50_000
        var held = Self.job("takeover", "held-by-live", due: 40_000)
        held.waitingTimerDue = nil
        held.lookup?.claim = Claim(owner: "live", expires: now + 29_000)
        var orphan = Self.job("takeover", "held-by-gone", due: 40_000)
        orphan.waitingTimerDue = nil
        orphan.lookup?.claim = Claim(owner: "gone", expires: now + 28_000)
        for job in [held, orphan] { try store.update(job.key) { $0 = job } }
        try store.renewLiveness(of: "live", expires: now + 1_000)
        try store.renewLiveness(of: "gone", expires: now - 100)
        try store.renewLiveness(of: "me", expires: now - 100)
        #expect(try secondConnection.dueKeys(now: now, limit: 10).isEmpty, "both claims are in their lease")

        let lapsed = try secondConnection.lapsedOwners(now: now, except: "me")
        #expect(lapsed == ["gone"])
        let takenOver = try secondConnection.releaseClaims(of: lapsed, lapsedAt: now)
        #expect(takenOver.map(\.job.key) == [orphan.key])
        #expect(takenOver.first?.kinds == [.lookup])
        #expect(takenOver.first?.owners == ["gone"])
        // Live owner: wait. Gone owner: due at once, and forgotten.
        #expect(try store.dueKeys(now: now, limit: 10) == [orphan.key])
        #expect(try store.update(held.key) { $0?.lookup?.claim?.owner } == "live")
        #expect(Set(try store.livenessRecords().keys) == ["live", "me"])

        // The gone owner comes back with its result after "taker" claimed the lookup again.
        let stale = JobMachine.Work(
            kind: .lookup, key: orphan.key, jobID: orphan.jobID, identities: orphan.allIdentities, serverName: orphan.serverName,
            delayID: orphan.delayID, actingUserID: nil, claim: try #require(orphan.lookup?.claim))
        let taken = try store.update(orphan.key) { job in
            JobMachine.claimDueWork(&job, now: now + 10, owner: "taker", settings: JobMachine.Settings()).work
        }
        #expect(taken.map(\.claim.owner) == ["taker"])
        let version = try store.update(orphan.key) { $0?.version }
        let notes = try secondConnection.update(orphan.key) { job in
            JobMachine.complete(&job, work: stale, outcome: .presence(.present), now: now + 20, random: FixedRandomSource(byte: 0), settings: JobMachine.Settings())
        }
        #expect(notes == [.discarded])
        #expect(try store.update(orphan.key) { $0?.version } == version, "the late write-back changed the record")
        #expect(try store.update(orphan.key) { $0?.state } == .waitingForInitialConnect)

        for job in [held, orphan] { try store.delete(job.key) }
        for owner in ["live", "me"] { try store.removeLiveness(of: owner, lapsedAt: nil) }
    }

    /// §8.11 rev. 2: expired jobs go at every start unless a live owner holds them.
    func expiredJobsArePurgedUnlessHeld() throws {
        let now: Int64 = 100_000
        // restarted_at 500 + 8 000 ms: long expired at `now`.
        let expired = Self.job("purge", "expired")
        var heldByLive = Self.job("purge", "held-by-live")
        heldByLive.lookup?.claim = Claim(owner: "live", expires: now + 20_000)
        var heldByGone = Self.job("purge", "held-by-gone")
        heldByGone.lookup?.claim = Claim(owner: "gone", expires: now + 20_000)
        var current = Self.job("purge", "current")
        current.restartedAt = now - 1_000
        for job in [expired, heldByLive, heldByGone, current] { try store.update(job.key) { $0 = job } }
        try store.renewLiveness(of: "live", expires: now + 1_000)
        try store.renewLiveness(of: "gone", expires: now - 1)

        let purged = try secondConnection.purgeExpiredJobs(now: now)
        #expect(Set(purged.map(\.key)) == [expired.key, heldByGone.key])
        #expect(Set(try store.allRecords().map(\.key)) == [heldByLive.key, current.key])
        #expect(try secondConnection.purgeExpiredJobs(now: now).isEmpty)

        for job in [heldByLive, current] { try store.delete(job.key) }
        for owner in ["live", "gone"] { try store.removeLiveness(of: owner, lapsedAt: nil) }
    }

    /// Read-modify-write from many threads on two connections loses no update.
    func concurrentUpdatesAreAtomic() throws {
        let job = Self.job("counter")
        try store.update(job.key) { $0 = job }
        let stores = [store, secondConnection]
        let failures = Mutex(0)
        DispatchApply.concurrentPerform(iterations: 8) { index in
            for _ in 0..<25 {
                do {
                    try stores[index % 2].update(job.key) { $0?.delayTimeout += 1 }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(try store.update(job.key) { $0?.delayTimeout } == 8000 + 200)
        try store.delete(job.key)
    }

    func recoveryLockExcludesOtherConnections() throws {
        let inside = Mutex(0)
        let overlap = Mutex(false)
        let stores = [store, secondConnection]
        DispatchApply.concurrentPerform(iterations: 4) { index in
            try? stores[index % 2].withRecoveryLock { () throws(JobStoreError) in
                let count = inside.withLock { value -> Int in
                    value += 1
                    return value
                }
                if count > 1 { overlap.withLock { $0 = true } }
                var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                nanosleep(&pause, nil)
                inside.withLock { $0 -= 1 }
            }
        }
        #expect(!overlap.withLock { $0 })
    }
}
