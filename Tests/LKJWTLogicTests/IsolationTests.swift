import FoundationEssentials
import Glibc
import LKJWTTestSupport
import Synchronization
import Testing

@testable import LKJWTLogic

/// Contract §13.3: budgets for servers not known to answer, and fair executors for jobs.
struct IsolationTests {
    static func admission(total: Int = 4, perDestination: Int? = nil, grace: Duration = .zero) -> (DestinationAdmission, ManualMonotonicClock) {
        let clock = ManualMonotonicClock()
        var limits = DestinationAdmission.Limits(unknownTotal: total, perDestination: perDestination)
        limits.probeGrace = grace
        return (DestinationAdmission(limits: limits, clock: clock), clock)
    }

    static let deadline = Deadline(after: .seconds(10))

    /// Answers `server`'s request in flight from another thread once the next admission is deciding
    /// (it reads the clock first), so that admission finds the request still open and has to wait.
    static func finishWhileDeciding(
        _ admission: DestinationAdmission, clock: ManualMonotonicClock, _ server: String, decision: DestinationAdmission.Decision
    ) -> Thread {
        let deciding = Semaphore()
        clock.signalNextRead(deciding)
        return Thread {
            deciding.wait(timeout: .seconds(30))
            admission.finish(server, decision: decision, answered: true)
        }
    }

    @Test func defaultLimitsKeepAReserveForKnownServers() {
        #expect(DestinationAdmission.Limits(threads: 16).unknownTotal == 8)
        #expect(DestinationAdmission.Limits(threads: 16).perDestination == 8)
        #expect(DestinationAdmission.Limits(threads: 4).unknownTotal == 2)
        #expect(DestinationAdmission.Limits(threads: 1).unknownTotal == 1)
    }

    @Test func unknownServersShareABudgetAndKnownOnesPassFreely() {
        let (admission, _) = Self.admission()
        admission.finish("good.example", decision: .known, answered: true)
        let silent = (2...5).map { "127.0.0.\($0)" }
        #expect(silent.map { admission.admit($0, deadline: Self.deadline) } == Array(repeating: .admitted, count: 4))
        guard case .refused = admission.admit("127.0.0.6", deadline: Self.deadline) else {
            Issue.record("a fifth unknown server was admitted")
            return
        }
        for _ in 0..<100 {
            #expect(admission.admit("good.example", deadline: Self.deadline) == .known)
            admission.finish("good.example", decision: .known, answered: true)
        }
        admission.finish("127.0.0.2", decision: .admitted, answered: false)
        #expect(admission.admit("127.0.0.6", deadline: Self.deadline) == .admitted)
    }

    @Test func anAnswerCountsForTenMinutesAndSilenceEndsIt() {
        let (admission, clock) = Self.admission(total: 1, perDestination: 10)
        #expect(admission.admit("hs.example", deadline: Self.deadline) == .admitted)
        admission.finish("hs.example", decision: .admitted, answered: true)
        clock.advance(.seconds(599))
        #expect(admission.admit("hs.example", deadline: Self.deadline) == .known)
        clock.advance(.seconds(2))
        #expect(admission.admit("hs.example", deadline: Self.deadline) == .admitted)
        admission.finish("hs.example", decision: .admitted, answered: true)
        #expect(admission.admit("hs.example", deadline: Self.deadline) == .known)
        // Known, then silent: it pays like any unknown server from then on.
        admission.finish("hs.example", decision: .known, answered: false)
        #expect(admission.admit("hs.example", deadline: Self.deadline) == .admitted)
    }

    @Test func aBurstForANewServerWaitsForItsFirstAnswerInsteadOfBeingRefused() {
        let (admission, clock) = Self.admission(total: 1, grace: .seconds(5))
        #expect(admission.admit("new.example", deadline: Self.deadline) == .admitted)
        let answered = Self.finishWhileDeciding(admission, clock: clock, "new.example", decision: .admitted)
        let started = ContinuousClock.now
        #expect(admission.admit("new.example", deadline: Self.deadline) == .known)
        #expect(started.duration(to: .now) < .seconds(3))
        answered.join()
    }

    @Test func aSilentServerGetsNoGraceOnceItsRequestsAreOld() {
        let (admission, clock) = Self.admission(total: 1, grace: .milliseconds(500))
        #expect(admission.admit("silent.example", deadline: Self.deadline) == .admitted)
        clock.advance(.milliseconds(600))
        let started = ContinuousClock.now
        guard case .refused = admission.admit("silent.example", deadline: Self.deadline) else {
            Issue.record("an over-budget request for a silent server was admitted")
            return
        }
        // Refused at once: waiting would cost the thread that known servers need.
        #expect(started.duration(to: .now) < .milliseconds(100))
        // A different server has no request in flight to wait for: refused at once, too.
        guard case .refused = admission.admit("other.example", deadline: Self.deadline) else {
            Issue.record("an over-budget request for another server was admitted")
            return
        }
    }

    @Test func theGraceEndsWithoutAnAnswer() {
        let (admission, _) = Self.admission(total: 1, grace: .milliseconds(200))
        #expect(admission.admit("slow.example", deadline: Self.deadline) == .admitted)
        let started = ContinuousClock.now
        guard case .refused = admission.admit("slow.example", deadline: Self.deadline) else {
            Issue.record("admitted without an answer")
            return
        }
        let waited = started.duration(to: .now)
        #expect(waited >= .milliseconds(150) && waited < .seconds(2))
    }

    @Test func aKnownServerThatStallsHoldsOnlyItsShare() {
        let (admission, clock) = Self.admission(total: 4, perDestination: 2, grace: .milliseconds(500))
        admission.finish("turncoat.example", decision: .known, answered: true)
        admission.finish("good.example", decision: .known, answered: true)
        #expect(admission.admit("turncoat.example", deadline: Self.deadline) == .known)
        #expect(admission.admit("turncoat.example", deadline: Self.deadline) == .known)
        // Its requests are older than the grace: refused at once, no thread spent waiting.
        clock.advance(.milliseconds(600))
        let started = ContinuousClock.now
        defer { #expect(started.duration(to: .now) < .milliseconds(100)) }
        guard case .refused = admission.admit("turncoat.example", deadline: Self.deadline) else {
            Issue.record("a third request to a stalling server was admitted")
            return
        }
        #expect(admission.admit("good.example", deadline: Self.deadline) == .known)
        // Unknown servers' budget is untouched by known servers' requests.
        #expect(admission.admit("new.example", deadline: Self.deadline) == .admitted)
    }

    @Test func aBusyKnownServerWaitsBrieflyForAPlace() {
        let (admission, clock) = Self.admission(total: 4, perDestination: 1, grace: .seconds(5))
        admission.finish("busy.example", decision: .known, answered: true)
        #expect(admission.admit("busy.example", deadline: Self.deadline) == .known)
        let done = Self.finishWhileDeciding(admission, clock: clock, "busy.example", decision: .known)
        #expect(admission.admit("busy.example", deadline: Self.deadline) == .known)
        done.join()
    }

    /// Each ended request lets exactly one waiting request in, and no waiting request is forgotten
    /// (each ended request wakes one of them, no longer all of them).
    @Test func waitingRequestsAreLetInOneAtATime() {
        let (admission, _) = Self.admission(total: 4, perDestination: 1, grace: .seconds(20))
        admission.finish("busy.example", decision: .known, answered: true)
        #expect(admission.admit("busy.example", deadline: Self.deadline) == .known)
        let admitted = Mutex(0)
        let waiting = (0..<3).map { _ in
            Thread {
                let decision = admission.admit("busy.example", deadline: Deadline(after: .seconds(20)))
                admitted.withLock { $0 += decision == .known ? 1 : 0 }
            }
        }
        for expected in 1...3 {
            admission.finish("busy.example", decision: .known, answered: true)
            #expect(Self.eventually { admitted.withLock { $0 } >= expected })
            // No second request got in on the same ended request.
            SystemCall.sleep(for: .milliseconds(50))
            #expect(admitted.withLock { $0 } == expected)
        }
        for thread in waiting { thread.join() }
    }

    /// When the last request in flight ends, every waiting request decides again at once: there is
    /// nothing more to wait for. Here the server has answered, so all of them pass.
    @Test func whenTheLastRequestEndsEveryWaitingRequestDecidesAgain() {
        let (admission, _) = Self.admission(total: 1, perDestination: 4, grace: .seconds(20))
        #expect(admission.admit("new.example", deadline: Self.deadline) == .admitted)
        let decisions = Mutex<[DestinationAdmission.Decision]>([])
        let waiting = (0..<3).map { _ in
            Thread {
                let decision = admission.admit("new.example", deadline: Deadline(after: .seconds(20)))
                decisions.withLock { $0.append(decision) }
            }
        }
        // A moment for the three to start waiting; one that starts later finds the server known and
        // passes at once, so the outcome does not depend on it.
        SystemCall.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        admission.finish("new.example", decision: .admitted, answered: true)
        for thread in waiting { thread.join() }
        #expect(started.duration(to: .now) < .seconds(5))
        #expect(decisions.withLock { $0 } == [.known, .known, .known])
    }

    /// Polls `condition` for up to 5 s.
    static func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Deadline(after: .seconds(5))
        while !deadline.hasPassed {
            if condition() { return true }
            SystemCall.sleep(for: .milliseconds(2))
        }
        return condition()
    }

    @Test func theVerifierRefusesOverBudgetWithoutCallingAndLearnsFromAnswers() {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in .json(200, #"{"sub":"@alice:127.0.0.9"}"#) }
        let (admission, _) = Self.admission(total: 1)
        let verifier = OpenIDVerifier(
            resolver: ServerResolver(http: http, srv: TableSRVResolver([:]), clock: FixedClock(), random: FixedRandomSource(byte: 0)), http: http, admission: admission)
        #expect(admission.admit("127.0.0.2", deadline: Self.deadline) == .admitted)
        guard case .refused = verifier.verify(accessToken: "t", serverName: "127.0.0.9") else {
            Issue.record("verification over budget was not refused")
            return
        }
        #expect(http.requests.isEmpty)
        admission.finish("127.0.0.2", decision: .admitted, answered: false)
        #expect(verifier.verify(accessToken: "t", serverName: "127.0.0.9") == .verified(userID: "@alice:127.0.0.9"))
        // Now known: passes although the budget is taken again.
        #expect(admission.admit("127.0.0.2", deadline: Self.deadline) == .admitted)
        #expect(verifier.verify(accessToken: "t", serverName: "127.0.0.9") == .verified(userID: "@alice:127.0.0.9"))
    }

    static func work(_ server: String, _ index: Int, kind: JobMachine.WorkKind = .restart, expires: Int64 = 100_000) -> JobMachine.Work {
        JobMachine.Work(
            kind: kind, key: JobKey(room: "r", identity: "\(server)-\(index)"), jobID: "j\(index)", identities: [], serverName: server,
            delayID: "d", actingUserID: nil, claim: Claim(owner: "o", expires: expires))
    }

    @Test func aStallingServerHoldsAtMostItsLaneLimit() {
        var queue = FairWorkQueue(perLaneLimit: 2)
        for index in 0..<200 { queue.add(Self.work("silent.example", index)) }
        #expect(queue.startable == 2)
        let first = queue.next(now: 0, leaseLeft: 15_000).work
        let second = queue.next(now: 0, leaseLeft: 15_000).work
        #expect(first?.serverName == "silent.example" && second?.serverName == "silent.example")
        // Both executors on the silent server are stuck; the next one finds nothing it may start there...
        #expect(queue.next(now: 0, leaseLeft: 15_000).work == nil)
        #expect(queue.startable == 0)
        // ...but a healthy server's work, claimed behind all 198, starts at once.
        queue.add(Self.work("healthy.example", 0))
        #expect(queue.startable == 1)
        #expect(queue.next(now: 0, leaseLeft: 15_000).work?.serverName == "healthy.example")
        if let first { queue.finished(first) }
        #expect(queue.next(now: 0, leaseLeft: 15_000).work?.serverName == "silent.example")
    }

    @Test func lanesAreServedInTurn() {
        var queue = FairWorkQueue(perLaneLimit: 2)
        for index in 0..<3 { queue.add(Self.work("a.example", index)) }
        for index in 0..<3 { queue.add(Self.work("b.example", index)) }
        queue.add(Self.work("a.example", 9, kind: .lookup))
        var order: [String] = []
        while let work = queue.next(now: 0, leaseLeft: 0).work {
            order.append(FairWorkQueue.lane(of: work))
            queue.finished(work)
        }
        #expect(order == ["a.example", "b.example", FairWorkQueue.sfuLane, "a.example", "b.example", "a.example", "b.example"])
        #expect(queue.count == 0)
    }

    @Test func workWhoseClaimRunsOutIsHandedBackNotStarted() {
        var queue = FairWorkQueue(perLaneLimit: 2)
        queue.add(Self.work("a.example", 0, expires: 10_000))
        queue.add(Self.work("a.example", 1, expires: 40_000))
        queue.add(Self.work("b.example", 0, expires: 12_000))
        let (work, stale) = queue.next(now: 0, leaseLeft: 15_000)
        #expect(work?.key.identity == "a.example-1")
        #expect(stale.map(\.key.identity) == ["a.example-0"])
        let rest = queue.next(now: 0, leaseLeft: 15_000)
        #expect(rest.work == nil)
        #expect(rest.stale.map(\.key.identity) == ["b.example-0"])
        #expect(queue.count == 0)
    }
}
