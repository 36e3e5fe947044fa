import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

struct JobMachineTests {
    static let settings = JobMachine.Settings(sanityInterval: .zero)
    static let start: Int64 = 1_700_000_000_000

    static func handover(timeout: Int64 = 8000) -> DelayedLeaveHandover {
        DelayedLeaveHandover(
            serverName: "example.org", delayID: "syd_1", delayTimeout: timeout, roomAlias: "room", identity: "hashed",
            alternativeIdentities: ["@alice:example.org:DEVICE"])
    }

    static func newJob(timeout: Int64 = 8000) throws -> DelayedLeaveJob {
        try JobMachine.newJob(handover(timeout: timeout), jobID: "JOB1", now: start).get()
    }

    static func state(_ job: DelayedLeaveJob?) -> String {
        guard let job else { return "A" }
        switch job.state {
        case .waitingForInitialConnect: return "W"
        case .connected: return "C"
        case .disconnected: return "D"
        }
    }

    // MARK: §8.4 transition table, every cell

    static let table: [(from: String, event: JobEvent, to: String)] = [
        ("W", .participantConnected, "C"), ("W", .participantLookupSuccessful, "C"), ("W", .participantDisconnectedIntentionally, "W"),
        ("W", .participantConnectionAborted, "A"), ("W", .sfuParticipantGone, "W"), ("W", .waitingStateTimedOut, "D"),
        ("W", .delayedEventTimedOut, "W"), ("W", .delayedEventNotFound, "W"), ("W", .csAPIURLNotFound, "W"),
        ("C", .participantConnected, "C"), ("C", .participantLookupSuccessful, "C"), ("C", .participantDisconnectedIntentionally, "D"),
        ("C", .participantConnectionAborted, "D"), ("C", .sfuParticipantGone, "D"), ("C", .waitingStateTimedOut, "C"),
        ("C", .delayedEventTimedOut, "A"), ("C", .delayedEventNotFound, "A"), ("C", .csAPIURLNotFound, "A"),
    ] + JobEvent.allCases.map { ("D", $0, "D") }

    static func job(in state: String) throws -> DelayedLeaveJob? {
        var job: DelayedLeaveJob? = try newJob()
        if state == "C" || state == "D" { JobMachine.apply(.participantConnected, to: &job, now: start + 100) }
        if state == "D" { JobMachine.apply(.participantConnectionAborted, to: &job, now: start + 200) }
        return job
    }

    @Test(arguments: table)
    func transitionTable(from: String, event: JobEvent, to: String) throws {
        var job = try Self.job(in: from)
        #expect(Self.state(job) == from)
        let before = job
        let transition = JobMachine.apply(event, to: &job, now: Self.start + 500)
        #expect(Self.state(job) == to)
        if from == to {
            #expect(transition == nil)
            #expect(job == before, "ignored events change nothing")
        } else {
            #expect(transition?.event == event)
        }
    }

    // MARK: §8.5 entry actions and timers

    @Test func creationArmsTheWaitingTimerAndTheLookup() throws {
        let job = try Self.newJob(timeout: 8000)
        #expect(job.state == .waitingForInitialConnect)
        #expect(job.restartedAt == Self.start)
        #expect(job.waitingTimerDue == Self.start + 8000)
        #expect(job.lookup == Activity(due: Self.start, sequenceStart: Self.start, maxElapsed: 8000))
        #expect(job.alternativeIdentities == ["@alice:example.org:DEVICE"])
        let long = try Self.newJob(timeout: 10 * 3_600_000)
        #expect(long.waitingTimerDue == Self.start + 3_600_000)
    }

    @Test(arguments: [0, -1, 9_223_372_036_855] as [Int64])
    func outOfRangeTimeoutsAreRejected(timeout: Int64) {
        guard case .failure(let error) = JobMachine.newJob(Self.handover(timeout: timeout), jobID: "J", now: Self.start) else {
            Issue.record("expected a failure")
            return
        }
        #expect(error == .invalidDelayTimeout(timeout))
        #expect(MatrixError(error) == .badJSON("invalid delay timeout for delayed event job: \(timeout)ms"))
    }

    @Test func largestTimeoutIsAccepted() {
        #expect((try? JobMachine.newJob(Self.handover(timeout: 9_223_372_036_854), jobID: "J", now: Self.start).get()) != nil)
    }

    @Test func connectedEntryRestartsAtOnceAndLeavingItAbandonsTheRestart() throws {
        var job: DelayedLeaveJob? = try Self.newJob()
        JobMachine.apply(.participantConnected, to: &job, now: Self.start + 100)
        #expect(job?.waitingTimerDue == nil)
        #expect(job?.restartDeadline == Self.start + 8100)
        #expect(job?.restart?.due == Self.start + 100)
        JobMachine.apply(.participantDisconnectedIntentionally, to: &job, now: Self.start + 200)
        #expect(job?.restart == nil)
        // Send window: what is left of the restart deadline, at least 1 s, at most 1 h.
        #expect(job?.send == Activity(due: Self.start + 200, sequenceStart: Self.start + 200, maxElapsed: 7900))
    }

    @Test func waitingTimeoutSendsWithAOneSecondWindow() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 1000)
        let (work, notes) = JobMachine.claimDueWork(&job, now: Self.start + 1000, owner: "w", settings: Self.settings)
        #expect(notes.contains(.transition(JobTransition(event: .waitingStateTimedOut, from: .waitingForInitialConnect, to: .disconnected))))
        #expect(job?.send?.maxElapsed == 1000)
        #expect(Set(work.map(\.kind)) == [.send, .lookup])
    }

    // MARK: Claims and results

    @Test func claimedWorkIsNotClaimedTwiceUntilTheLeaseExpires() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 60_000)
        let first = JobMachine.claimDueWork(&job, now: Self.start, owner: "a", settings: Self.settings).work
        #expect(first.map(\.kind) == [.lookup])
        #expect(first.first?.identities == ["hashed", "@alice:example.org:DEVICE"])
        #expect(JobMachine.claimDueWork(&job, now: Self.start + 29_999, owner: "b", settings: Self.settings).work.isEmpty)
        let takeover = JobMachine.claimDueWork(&job, now: Self.start + 30_000, owner: "b", settings: Self.settings).work
        #expect(takeover.first?.claim.owner == "b")
        // The first worker's late result no longer matches the claim.
        let notes = JobMachine.complete(&job, work: first[0], outcome: .presence(.present), now: Self.start + 30_001, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(notes == [.discarded])
        #expect(job?.state == .waitingForInitialConnect)
    }

    // MARK: Takeover of a gone owner's claim (§8.10 rule 4, rev. 2)

    @Test func aLiveOwnersClaimIsWaitedFor() throws {
        var (job, _) = try Self.connectedJob(timeout: 3000)
        let before = job
        // "a" is alive: nothing is released, and nobody else may claim before the lease ends.
        #expect(JobMachine.releaseClaims(&job, ofGoneOwners: ["someone-else"]).isEmpty)
        #expect(job == before)
        #expect(JobMachine.claimDueWork(&job, now: Self.start + 1_500, owner: "b", settings: Self.settings).work.isEmpty)
        #expect(job?.nextDue == Self.start + Self.settings.lease.milliseconds)
    }

    @Test func aGoneOwnersClaimIsTakenAtOnce() throws {
        var (job, _) = try Self.connectedJob(timeout: 3000)
        let sequence = try #require(job?.restart)
        #expect(JobMachine.releaseClaims(&job, ofGoneOwners: ["a"]) == [.restart])
        #expect(job?.restart?.claim == nil)
        // Due again now (not at the lease's end), for whoever polls first.
        #expect(try #require(job?.nextDue) <= Self.start + 1_300)
        let taken = JobMachine.claimDueWork(&job, now: Self.start + 1_300, owner: "b", settings: Self.settings).work
        #expect(taken.map(\.kind) == [.restart])
        #expect(taken.first?.claim.owner == "b")
        // The same sequence goes on within the same E: no new deadline check, no new start.
        #expect(job?.restart?.sequenceStart == sequence.sequenceStart)
        #expect(job?.restart?.maxElapsed == sequence.maxElapsed)
    }

    @Test func anOwnerBackFromTheDeadHasItsLateWriteBackDiscarded() throws {
        var (job, stale) = try Self.connectedJob(timeout: 3000)
        JobMachine.releaseClaims(&job, ofGoneOwners: ["a"])
        let random = FixedRandomSource(byte: 0)
        // Released but not yet taken: the late result still finds no claim of its own.
        var released = job
        #expect(JobMachine.complete(&released, work: stale, outcome: .delayedEvent(.success), now: Self.start + 1_250, random: random, settings: Self.settings) == [.discarded])
        #expect(released == job)
        let taken = try #require(JobMachine.claimDueWork(&job, now: Self.start + 1_300, owner: "b", settings: Self.settings).work.first)
        let beforeLateResult = job
        #expect(JobMachine.complete(&job, work: stale, outcome: .delayedEvent(.notFound), now: Self.start + 1_400, random: random, settings: Self.settings) == [.discarded])
        #expect(job == beforeLateResult, "a 404 the gone owner saw must not abort the job")
        #expect(JobMachine.complete(&job, work: taken, outcome: .delayedEvent(.success), now: Self.start + 1_500, random: random, settings: Self.settings) == [.restarted])
        #expect(job?.restartedAt == Self.start + 1_500)
    }

    @Test func releasingClaimsOnlyTouchesTheGoneOwners() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 60_000)
        JobMachine.apply(.participantConnected, to: &job, now: Self.start)
        job?.lookup?.claim = Claim(owner: "alive", expires: Self.start + 30_000)
        job?.restart?.claim = Claim(owner: "gone", expires: Self.start + 30_000)
        #expect(JobMachine.releaseClaims(&job, ofGoneOwners: ["gone"]) == [.restart])
        #expect(job?.lookup?.claim?.owner == "alive")
        #expect(job?.restart?.claim == nil)
    }

    // MARK: Start-up purge (§8.11 rev. 2)

    @Test func expiredJobsAreStaleUnlessALiveOwnerOrARestartHoldsThem() throws {
        var job = try Self.newJob(timeout: 1500)
        let end = Self.start + 1500
        #expect(!JobMachine.isExpired(job, now: end - 1, liveOwners: []))
        #expect(JobMachine.isExpired(job, now: end, liveOwners: []))
        // A lookup in flight at a live owner keeps it; at a gone one it does not.
        job.lookup?.claim = Claim(owner: "alive", expires: end + 30_000)
        #expect(!JobMachine.isExpired(job, now: end, liveOwners: ["alive"]))
        #expect(JobMachine.isExpired(job, now: end, liveOwners: ["other"]))
        // A claimed restart may have moved the event on without recording it: kept, whoever holds it.
        job.lookup?.claim = nil
        job.restart = Activity(due: end - 100, sequenceStart: end - 100, maxElapsed: 100, claim: Claim(owner: "gone", expires: end + 29_900))
        #expect(!JobMachine.isExpired(job, now: end + 10_000, liveOwners: []))
        // Numbers from a stored record cannot trap.
        job.restart = nil
        job.restartedAt = .max
        job.delayTimeout = .max
        #expect(!JobMachine.isExpired(job, now: end, liveOwners: []))
        job.delayTimeout = 0
        #expect(JobMachine.isExpired(job, now: end, liveOwners: []))
    }

    @Test func lookupSuccessConnectsAndStartsSanityChecks() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 60_000)
        let settings = JobMachine.Settings(sanityInterval: .seconds(30))
        let work = JobMachine.claimDueWork(&job, now: Self.start, owner: "a", settings: settings).work[0]
        _ = JobMachine.complete(&job, work: work, outcome: .presence(.present), now: Self.start + 10, random: FixedRandomSource(byte: 0), settings: settings)
        #expect(job?.state == .connected)
        #expect(job?.lookupPhase == .sanity)
        #expect(job?.lookup?.due == Self.start + 30_010)
        // Sanity check confirms absence: SFUParticipantGone → D.
        let check = JobMachine.claimDueWork(&job, now: Self.start + 30_010, owner: "a", settings: settings).work.first { $0.kind == .lookup }!
        _ = JobMachine.complete(&job, work: check, outcome: .presence(.absent), now: Self.start + 30_020, random: FixedRandomSource(byte: 0), settings: settings)
        #expect(job?.state == .disconnected)
        #expect(job?.lookup == nil)
    }

    @Test func lookupBacksOffAndGivesUpSilentlyWithinItsWindow() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 3000)
        var now = Self.start
        var attempts = 0
        while let work = JobMachine.claimDueWork(&job, now: now, owner: "a", settings: Self.settings).work.first(where: { $0.kind == .lookup }) {
            attempts += 1
            _ = JobMachine.complete(&job, work: work, outcome: .presence(.absent), now: now, random: FixedRandomSource(byte: 0x80), settings: Self.settings)
            guard let due = job?.lookup?.due else { break }
            now = due
        }
        // Nominal delays 1 s, 1.5 s (then 2.25 s would pass 3 s): three attempts.
        #expect(attempts == 3)
        #expect(job?.lookup == nil)
        #expect(job?.state == .waitingForInitialConnect, "giving up the lookup changes no state")
    }

    static func connectedJob(timeout: Int64 = 1000) throws -> (DelayedLeaveJob?, JobMachine.Work) {
        var job: DelayedLeaveJob? = try newJob(timeout: timeout)
        JobMachine.apply(.participantConnected, to: &job, now: start)
        job?.lookup = nil
        let work = JobMachine.claimDueWork(&job, now: start, owner: "a", settings: settings).work
        return (job, work.first { $0.kind == .restart }!)
    }

    @Test func successfulRestartRepeatsAtEightyPercent() throws {
        var (job, work) = try Self.connectedJob(timeout: 1000)
        let notes = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.success), now: Self.start + 20, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(notes == [.restarted])
        #expect(job?.restartedAt == Self.start + 20)
        #expect(job?.restartDeadline == Self.start + 1020)
        #expect(job?.restart?.due == Self.start + 820)
        #expect(job?.restart?.sequenceStart == nil)
        // When it fires, the new sequence may use what is left of the deadline.
        let next = JobMachine.claimDueWork(&job, now: Self.start + 820, owner: "a", settings: Self.settings).work
        #expect(next.map(\.kind) == [.restart])
        #expect(job?.restart?.maxElapsed == 200)
    }

    @Test func restartNotFoundAbortsWithoutSend() throws {
        var (job, work) = try Self.connectedJob()
        let notes = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.notFound), now: Self.start + 5, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(job == nil)
        #expect(notes.contains(.transition(JobTransition(event: .delayedEventNotFound, from: .connected, to: .aborted))))
    }

    @Test func unresolvableClientServerAPIAbortsTheRestart() throws {
        var (job, work) = try Self.connectedJob()
        _ = JobMachine.complete(&job, work: work, outcome: .clientServerAPIUnresolvable("404"), now: Self.start + 5, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(job == nil)
    }

    @Test func transientRestartFailuresRetryUntilTheDeadline() throws {
        var (job, work) = try Self.connectedJob(timeout: 2000)
        _ = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.retry(after: nil, reason: "500")), now: Self.start + 10, random: FixedRandomSource(byte: 0x80), settings: Self.settings)
        // A draw just above the middle: 1.002 × the 1 s interval.
        #expect(job?.restart?.due == Self.start + 1011)
        #expect(job?.restart?.interval == 1500)
        let second = JobMachine.claimDueWork(&job, now: Self.start + 1011, owner: "a", settings: Self.settings).work.first { $0.kind == .restart }!
        let notes = JobMachine.complete(&job, work: second, outcome: .delayedEvent(.retry(after: nil, reason: "500")), now: Self.start + 1020, random: FixedRandomSource(byte: 0x80), settings: Self.settings)
        #expect(job == nil, "1.02 s + 1.5 s exceeds the 2 s window: DelayedEventTimedOut")
        #expect(notes.contains(.transition(JobTransition(event: .delayedEventTimedOut, from: .connected, to: .aborted))))
    }

    @Test func retryAfterHintReplacesTheBackoff() throws {
        var (job, work) = try Self.connectedJob(timeout: 10_000)
        _ = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.retry(after: 3000, reason: "429")), now: Self.start, random: FixedRandomSource(byte: 0xFF), settings: Self.settings)
        #expect(job?.restart?.due == Self.start + 3000)
        #expect(job?.restart?.interval == 1000)
    }

    @Test func sendIsClaimableOnlyInDAndEndsTheJob() throws {
        for outcome in [JobMachine.Outcome.delayedEvent(.success), .delayedEvent(.notFound), .clientServerAPIUnresolvable("x")] {
            var job: DelayedLeaveJob? = try Self.newJob(timeout: 1000)
            job?.lookup = nil
            let work = JobMachine.claimDueWork(&job, now: Self.start + 1000, owner: "a", settings: Self.settings).work
            #expect(work.map(\.kind) == [.send])
            _ = JobMachine.complete(&job, work: work[0], outcome: outcome, now: Self.start + 1001, random: FixedRandomSource(byte: 0), settings: Self.settings)
            #expect(job == nil)
        }
    }

    @Test func sendGivesUpWhenItsWindowIsSpent() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 1000)
        job?.lookup = nil
        let work = JobMachine.claimDueWork(&job, now: Self.start + 1000, owner: "a", settings: Self.settings).work[0]
        let notes = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.retry(after: nil, reason: "502")), now: Self.start + 1100, random: FixedRandomSource(byte: 0x80), settings: Self.settings)
        #expect(job == nil)
        #expect(notes.contains(.sendAbandoned("502")))
    }

    @Test func resultsForAReplacedJobAreDiscarded() throws {
        var (job, work) = try Self.connectedJob()
        job?.jobID = "NEWER"
        let notes = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.notFound), now: Self.start + 5, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(notes == [.discarded])
        #expect(job != nil)
    }

    @Test func expiredRestartDeadlineTimesOutWithoutACall() throws {
        var (job, work) = try Self.connectedJob(timeout: 1000)
        _ = JobMachine.complete(&job, work: work, outcome: .delayedEvent(.success), now: Self.start, random: FixedRandomSource(byte: 0), settings: Self.settings)
        // The restart timer fires only after the deadline (a process was stopped meanwhile).
        let late = JobMachine.claimDueWork(&job, now: Self.start + 1500, owner: "a", settings: Self.settings)
        #expect(late.work.isEmpty)
        #expect(job == nil)
    }

    // MARK: §8.11 recovery

    @Test func recoveryPurgesExpiredJobs() throws {
        let job = try Self.newJob(timeout: 500)
        #expect(JobMachine.recover(job, now: Self.start + 500, newJobID: "N") == .delete(reason: "skipping expired stored job"))
        var broken = job
        broken.delayTimeout = 0
        #expect(JobMachine.recover(broken, now: Self.start, newJobID: "N") == .delete(reason: "invalid delay timeout"))
    }

    @Test func recoveryResetsWaitingAndConnectedJobs() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 8000)
        JobMachine.apply(.participantConnected, to: &job, now: Self.start + 100)
        guard case .keep(let recovered) = JobMachine.recover(job!, now: Self.start + 2000, newJobID: "NEW") else {
            Issue.record("expected the job to be kept")
            return
        }
        #expect(recovered.jobID == "NEW")
        #expect(recovered.state == .waitingForInitialConnect)
        #expect(recovered.restartedAt == Self.start)
        #expect(recovered.restart == nil)
        #expect(recovered.waitingTimerDue == Self.start + 10_000)
        #expect(recovered.lookup?.due == Self.start + 2000)
    }

    @Test func recoveryResumesAPendingSend() throws {
        var job: DelayedLeaveJob? = try Self.newJob(timeout: 8000)
        JobMachine.apply(.participantConnected, to: &job, now: Self.start)
        JobMachine.apply(.participantConnectionAborted, to: &job, now: Self.start + 100)
        job?.send?.claim = Claim(owner: "dead", expires: Self.start + 30_100)
        guard case .keep(let recovered) = JobMachine.recover(job!, now: Self.start + 3000, newJobID: "NEW") else {
            Issue.record("expected the job to be kept")
            return
        }
        #expect(recovered.jobID == "JOB1")
        #expect(recovered.state == .disconnected)
        #expect(recovered.send == Activity(due: Self.start + 3000, sequenceStart: Self.start + 3000, maxElapsed: 5000))
    }

    @Test func recordRoundTripsAndStaysUpstreamReadable() throws {
        var job: DelayedLeaveJob? = try Self.newJob()
        JobMachine.apply(.participantConnected, to: &job, now: Self.start + 1)
        job?.restart?.claim = Claim(owner: "w", expires: 9)
        let original = try #require(job)
        let record = original.record()
        let decoded = try DelayedLeaveJob(record: record)
        #expect(decoded == original)
        let json = try JSONParser.parse(record)
        #expect(json["Params"]?["DelayTimeout"] == .number("8000000000"))
        #expect(json["RestartedAt"] == .string("2023-11-14T22:13:20.000Z"))
        let upstream = #"{"Params":{"DelayId":"d","DelayTimeout":8000000000,"ServerName":"s","LiveKitRoom":"r","LiveKitIdentity":"i","DelayCsApiUrl":""},"RestartedAt":"2023-11-14T23:13:20.5+01:00"}"#
        let foreign = try DelayedLeaveJob(record: upstream)
        #expect(foreign.isForeign)
        #expect(foreign.restartedAt == Self.start + 500)
        #expect(foreign.delayTimeout == 8000)
    }

    @Test func jobIDsAreSortableBase32Hex() {
        let first = JobID.make(microseconds: 1_700_000_000_000_000, random: FixedRandomSource(byte: 0xFF))
        let second = JobID.make(microseconds: 1_700_000_000_000_001, random: FixedRandomSource(byte: 0x00))
        #expect(first.count == 26)
        #expect(first.allSatisfy { "0123456789ABCDEFGHIJKLMNOPQRSTUV".contains($0) })
        #expect(first < second)
    }
}
