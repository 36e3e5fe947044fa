/// The job state machine of contract §8.4–§8.7 as pure functions over a stored job: no threads,
/// no I/O, no clock. Stores call these inside their atomic update; the scheduler does the I/O.
public enum JobMachine {
    public struct Settings: Sendable {
        /// Phase-2 sanity check period; zero disables it.
        public var sanityInterval: Duration
        /// How long a claim protects an attempt (longer than any single attempt).
        public var lease: Duration

        public init(sanityInterval: Duration = .zero, lease: Duration = .seconds(30)) {
            self.sanityInterval = sanityInterval
            self.lease = lease
        }
    }

    /// Longest waiting time and phase-1 lookup window (§8.5).
    static let maximumWait: Int64 = 3_600_000
    /// Largest delay whose nanosecond count fits in 64 bits (§8.8).
    static let maximumDelayTimeout: Int64 = 9_223_372_036_854

    public enum WorkKind: String, Sendable {
        case lookup, restart, send
    }

    /// An attempt a worker has claimed and must now perform.
    public struct Work: Sendable, Equatable {
        public let kind: WorkKind
        public let key: JobKey
        public let jobID: String
        public let identities: [String]
        public let serverName: String
        public let delayID: String
        public let claim: Claim

        package init(kind: WorkKind, key: JobKey, jobID: String, identities: [String], serverName: String, delayID: String, claim: Claim) {
            self.kind = kind
            self.key = key
            self.jobID = jobID
            self.identities = identities
            self.serverName = serverName
            self.delayID = delayID
            self.claim = claim
        }
    }

    public enum Outcome: Sendable, Equatable {
        case presence(ParticipantPresence)
        case delayedEvent(DelayedEventOutcome)
        case clientServerAPIUnresolvable(String)
    }

    /// What happened, for the caller's log.
    public enum Note: Sendable, Equatable {
        case transition(JobTransition)
        case done(reason: String)
        case lookupGaveUp
        case sanityCheckUnknown(String)
        case restarted
        case sendFinished(String)
        case sendAbandoned(String)
        case restartRetry(String)
        case discarded
    }

    // MARK: Creation

    /// A new job in W (§8.8), or the refusal of §8.8 when the delay timeout is out of range.
    static func newJob(_ handover: DelayedLeaveHandover, jobID: String, now: Int64) -> Result<DelayedLeaveJob, DelayedLeaveRefusal> {
        guard handover.delayTimeout > 0, handover.delayTimeout <= maximumDelayTimeout else {
            return .failure(.invalidDelayTimeout(handover.delayTimeout))
        }
        var job = DelayedLeaveJob(
            key: JobKey(room: handover.roomAlias, identity: handover.identity),
            alternativeIdentities: handover.alternativeIdentities.filter { $0 != handover.identity },
            jobID: jobID, serverName: handover.serverName, ownerUserID: handover.ownerUserID, delayID: handover.delayID,
            delayTimeout: handover.delayTimeout, restartedAt: now)
        enterWaiting(&job, now: now)
        return .success(job)
    }

    private static func enterWaiting(_ job: inout DelayedLeaveJob, now: Int64) {
        let wait = min(maximumWait, job.delayTimeout)
        job.state = .waitingForInitialConnect
        job.waitingTimerDue = now.saturatingAdding(wait)
        job.lookupPhase = .initial
        job.lookup = Activity(due: now, sequenceStart: now, maxElapsed: wait)
        job.restartDeadline = nil
        job.restart = nil
        job.send = nil
    }

    // MARK: Events

    /// Applies one event of §8.4; ignored pairs leave the job untouched and return nil.
    @discardableResult
    public static func apply(_ event: JobEvent, to job: inout DelayedLeaveJob?, now: Int64) -> JobTransition? {
        guard var current = job else { return nil }
        let from = current.state
        let target: JobTransition.Target
        switch (current.state, event) {
        case (.waitingForInitialConnect, .participantConnected), (.waitingForInitialConnect, .participantLookupSuccessful):
            enterConnected(&current, now: now)
            target = .connected
        case (.waitingForInitialConnect, .participantConnectionAborted),
            (.connected, .delayedEventTimedOut), (.connected, .delayedEventNotFound), (.connected, .csAPIURLNotFound):
            job = nil
            return JobTransition(event: event, from: from, to: .aborted)
        case (.waitingForInitialConnect, .waitingStateTimedOut),
            (.connected, .participantDisconnectedIntentionally), (.connected, .participantConnectionAborted), (.connected, .sfuParticipantGone):
            enterDisconnected(&current, now: now)
            target = .disconnected
        default:
            return nil
        }
        job = current
        return JobTransition(event: event, from: from, to: target)
    }

    private static func enterConnected(_ job: inout DelayedLeaveJob, now: Int64) {
        job.state = .connected
        job.waitingTimerDue = nil
        job.restartDeadline = now.saturatingAdding(job.delayTimeout)
        // DelayedEventReset at once: a restart sequence starting now.
        job.restart = Activity(due: now, sequenceStart: nil, maxElapsed: 0)
    }

    private static func enterDisconnected(_ job: inout DelayedLeaveJob, now: Int64) {
        job.state = .disconnected
        job.waitingTimerDue = nil
        // Leaving C abandons any restart in flight; its late result is discarded (DIFF-8).
        job.restart = nil
        job.send = Activity(due: now, sequenceStart: now, maxElapsed: sendWindow(job, now: now))
    }

    /// §8.5 send sequence step 1.
    static func sendWindow(_ job: DelayedLeaveJob, now: Int64) -> Int64 {
        guard let deadline = job.restartDeadline else { return 1000 }
        return deadline.saturatingSubtracting(now).clamped(to: 1000...maximumWait)
    }

    // MARK: Scheduling

    /// Fires due timers and claims every due activity for `owner`. The returned work must be performed
    /// and completed with `complete`.
    public static func claimDueWork(
        _ job: inout DelayedLeaveJob?, now: Int64, owner: String, settings: Settings
    ) -> (work: [Work], notes: [Note]) {
        var notes: [Note] = []
        if let due = job?.waitingTimerDue, due <= now, let transition = apply(.waitingStateTimedOut, to: &job, now: now) {
            notes.append(.transition(transition))
        }
        // A restart sequence whose deadline has passed gives up before any call (§8.5 step 1).
        if var current = job, let restart = current.restart, restart.sequenceStart == nil, restart.due <= now, restart.claim == nil {
            let remaining = (current.restartDeadline ?? now).saturatingSubtracting(now)
            if remaining <= 0 {
                if let transition = apply(.delayedEventTimedOut, to: &job, now: now) { notes.append(.transition(transition)) }
            } else {
                current.restart?.sequenceStart = now
                current.restart?.maxElapsed = remaining
                job = current
            }
        }
        guard var current = job else { return ([], notes) }
        var work: [Work] = []
        let claim = Claim(owner: owner, expires: now.saturatingAdding(settings.lease.milliseconds))
        let snapshot = current
        func claimIfDue(_ activity: inout Activity?, _ kind: WorkKind) {
            guard var value = activity, isClaimable(value, now: now) else { return }
            // A taken-over claim (dead worker) continues the same sequence within the same E.
            value.claim = claim
            activity = value
            work.append(Work(
                kind: kind, key: snapshot.key, jobID: snapshot.jobID, identities: snapshot.allIdentities,
                serverName: snapshot.serverName, delayID: snapshot.delayID, claim: claim))
        }
        claimIfDue(&current.lookup, .lookup)
        claimIfDue(&current.restart, .restart)
        claimIfDue(&current.send, .send)
        job = current
        return (work, notes)
    }

    private static func isClaimable(_ activity: Activity, now: Int64) -> Bool {
        if let claim = activity.claim { return claim.expires <= now }
        return activity.due <= now
    }

    // MARK: Takeover (§8.10 rule 4, rev. 2)

    /// Releases the claims held by owners that are provably gone (their liveness record lapsed), so
    /// that their activities are due again at once and any live worker takes them, continuing the same
    /// retry sequence within the same E. Claims of other owners are left alone: a live owner is waited
    /// for (up to the lease). Should a gone owner come back with its result, `complete` discards it,
    /// because the activity no longer carries its claim. Returns the kinds of work released.
    @discardableResult
    public static func releaseClaims(_ job: inout DelayedLeaveJob?, ofGoneOwners gone: Set<String>) -> [WorkKind] {
        guard var current = job else { return [] }
        var released: [WorkKind] = []
        for (path, kind) in [(\DelayedLeaveJob.lookup, WorkKind.lookup), (\.restart, .restart), (\.send, .send)] {
            guard let owner = current[keyPath: path]?.claim?.owner, gone.contains(owner) else { continue }
            current[keyPath: path]?.claim = nil
            released.append(kind)
        }
        if !released.isEmpty { job = current }
        return released
    }

    /// Whether a stored job is past its delay at start-up (§8.11 rev. 2): `restarted_at + delay_timeout ≤
    /// now`, so the homeserver has already sent or dropped the event, and no live owner holds a claim on
    /// it. A claimed restart keeps the job whoever holds it: its attempt may have restarted the event
    /// without living to record it, so `restarted_at` may be stale; the takeover finds out (a 404 ends it).
    static func isExpired(_ job: DelayedLeaveJob, now: Int64, liveOwners: Set<String>) -> Bool {
        guard job.delayTimeout > 0 else { return true }
        // Saturating: both numbers come from a stored record.
        let (end, overflow) = job.restartedAt.addingReportingOverflow(job.delayTimeout)
        guard !overflow, end <= now else { return false }
        if job.restart?.claim != nil { return false }
        let claims = [job.lookup, job.send].compactMap { $0?.claim }
        return !claims.contains { liveOwners.contains($0.owner) }
    }

    // MARK: Results

    /// Writes back one attempt's outcome. Results for another job (replaced) or another claim are discarded.
    public static func complete(
        _ job: inout DelayedLeaveJob?, work: Work, outcome: Outcome, now: Int64, random: any RandomSource, settings: Settings
    ) -> [Note] {
        guard let current = job, current.jobID == work.jobID else { return [.discarded] }
        switch work.kind {
        case .lookup:
            guard current.lookup?.claim == work.claim else { return [.discarded] }
            return completeLookup(&job, outcome: outcome, now: now, random: random, settings: settings)
        case .restart:
            guard current.state == .connected, current.restart?.claim == work.claim else { return [.discarded] }
            return completeRestart(&job, outcome: outcome, now: now, random: random)
        case .send:
            guard current.state == .disconnected, current.send?.claim == work.claim else { return [.discarded] }
            return completeSend(&job, outcome: outcome, now: now, random: random)
        }
    }

    private static func completeLookup(
        _ job: inout DelayedLeaveJob?, outcome: Outcome, now: Int64, random: any RandomSource, settings: Settings
    ) -> [Note] {
        guard var current = job, var lookup = current.lookup, case .presence(let presence) = outcome else { return [.discarded] }
        lookup.claim = nil
        var notes: [Note] = []
        switch (current.lookupPhase, presence) {
        case (.initial, .present):
            current.lookup = nil
            if settings.sanityInterval > .zero {
                current.lookupPhase = .sanity
                current.lookup = Activity(due: now.saturatingAdding(settings.sanityInterval.milliseconds), sequenceStart: now, maxElapsed: .max)
            }
            job = current
            if let transition = apply(.participantLookupSuccessful, to: &job, now: now) { notes.append(.transition(transition)) }
        case (.initial, _):
            if scheduleRetry(&lookup, now: now, retryAfter: nil, random: random) {
                current.lookup = lookup
            } else {
                current.lookup = nil
                notes.append(.lookupGaveUp)
            }
            job = current
        case (.sanity, .absent):
            current.lookup = nil
            job = current
            if let transition = apply(.sfuParticipantGone, to: &job, now: now) { notes.append(.transition(transition)) }
        case (.sanity, let other):
            if case .unknown(let reason) = other { notes.append(.sanityCheckUnknown(reason)) }
            lookup.due = now.saturatingAdding(settings.sanityInterval.milliseconds)
            current.lookup = lookup
            job = current
        }
        return notes
    }

    private static func completeRestart(_ job: inout DelayedLeaveJob?, outcome: Outcome, now: Int64, random: any RandomSource) -> [Note] {
        guard var current = job, var restart = current.restart else { return [.discarded] }
        let retryAfter: Int64?
        let reason: String
        switch outcome {
        case .delayedEvent(.success):
            current.restartedAt = now
            current.restartDeadline = now.saturatingAdding(current.delayTimeout)
            // Next DelayedEventReset at 80 % of the timeout: a fresh sequence then.
            current.restart = Activity(
                due: now.saturatingAdding(current.delayTimeout.saturatingMultiplied(by: 4) / 5), sequenceStart: nil, maxElapsed: 0)
            job = current
            return [.restarted]
        case .delayedEvent(.notFound):
            return transitionNotes(apply(.delayedEventNotFound, to: &job, now: now))
        case .clientServerAPIUnresolvable:
            return transitionNotes(apply(.csAPIURLNotFound, to: &job, now: now))
        case .delayedEvent(.retry(let hint, let text)):
            retryAfter = hint
            reason = text
        case .presence:
            return [.discarded]
        }
        restart.claim = nil
        guard scheduleRetry(&restart, now: now, retryAfter: retryAfter, random: random) else {
            return [.restartRetry(reason)] + transitionNotes(apply(.delayedEventTimedOut, to: &job, now: now))
        }
        current.restart = restart
        job = current
        return [.restartRetry(reason)]
    }

    private static func completeSend(_ job: inout DelayedLeaveJob?, outcome: Outcome, now: Int64, random: any RandomSource) -> [Note] {
        guard var current = job, var send = current.send else { return [.discarded] }
        switch outcome {
        case .delayedEvent(.success):
            job = nil
            return [.sendFinished("sent"), .done(reason: "delayed leave event sent")]
        case .delayedEvent(.notFound):
            job = nil
            return [.sendFinished("already sent or cancelled"), .done(reason: "delayed leave event already sent or cancelled")]
        case .clientServerAPIUnresolvable(let reason):
            job = nil
            return [.sendAbandoned(reason), .done(reason: "client-server API not resolvable")]
        case .delayedEvent(.retry(let hint, let reason)):
            send.claim = nil
            guard scheduleRetry(&send, now: now, retryAfter: hint, random: random) else {
                job = nil
                return [.sendAbandoned(reason), .done(reason: "gave up sending the delayed leave event")]
            }
            current.send = send
            job = current
            return []
        case .presence:
            return [.discarded]
        }
    }

    /// Moves a failed activity to its next attempt (§8.7); false when its max elapsed time is spent.
    private static func scheduleRetry(_ activity: inout Activity, now: Int64, retryAfter: Int64?, random: any RandomSource) -> Bool {
        switch RetryPolicy.next(
            after: now, interval: activity.interval, sequenceStart: activity.sequenceStart ?? now, maxElapsed: activity.maxElapsed,
            retryAfter: retryAfter, random: random)
        {
        case .retry(let at, let nextInterval):
            activity.due = at
            activity.interval = nextInterval
            return true
        case .giveUp:
            return false
        }
    }

    private static func transitionNotes(_ transition: JobTransition?) -> [Note] {
        guard let transition else { return [] }
        return [.transition(transition)] + (transition.to == .aborted ? [.done(reason: "aborted after \(transition.event.rawValue)")] : [])
    }

    // MARK: Recovery

    public enum RecoveryAction: Sendable, Equatable {
        case delete(reason: String)
        case keep(DelayedLeaveJob)
    }

    /// Cold-start handling of one stored job (§8.11).
    public static func recover(_ job: DelayedLeaveJob, now: Int64, newJobID: String) -> RecoveryAction {
        if job.delayTimeout <= 0 { return .delete(reason: "invalid delay timeout") }
        if job.restartedAt.saturatingAdding(job.delayTimeout) <= now { return .delete(reason: "skipping expired stored job") }
        var recovered = job
        if job.state == .disconnected, job.send != nil, !job.isForeign {
            recovered.send = Activity(due: now, sequenceStart: now, maxElapsed: sendWindow(job, now: now))
            return .keep(recovered)
        }
        recovered.jobID = newJobID
        recovered.isForeign = false
        enterWaiting(&recovered, now: now)
        return .keep(recovered)
    }
}
