/// One delegated delayed leave event and everything the scheduler needs to carry it on in any
/// worker process: state, timers as absolute due times, retry state and claims (contract §8.9).
/// Times are Unix milliseconds.
public struct DelayedLeaveJob: Sendable, Equatable {
    public enum State: String, Sendable {
        case waitingForInitialConnect = "WaitingForInitialConnect"
        case connected = "Connected"
        case disconnected = "Disconnected"
    }

    public enum LookupPhase: String, Sendable {
        /// Phase 1: find the participant once, with backoff.
        case initial
        /// Phase 2: periodic sanity check that the participant is still there.
        case sanity
    }

    public var key: JobKey
    /// Further identities of the same member (the legacy `user:device`), watched as well.
    public var alternativeIdentities: [String]
    public var jobID: String
    public var serverName: String
    /// The Matrix user (`sub`) who handed the event over; quotas count by it (§13.4). Empty in
    /// records written before it was kept, and in upstream's standalone records.
    public var ownerUserID: String
    public var delayID: String
    /// Milliseconds.
    public var delayTimeout: Int64
    public var restartedAt: Int64
    public var state: State
    /// Bumped by every stored change; optimistic stores compare it.
    public var version: Int64 = 0
    public var waitingTimerDue: Int64?
    var lookupPhase: LookupPhase = .initial
    public var lookup: Activity?
    var restartDeadline: Int64?
    public var restart: Activity?
    public var send: Activity?
    /// A record without our engine state (written by upstream lk-jwt-service): recovery resets it.
    public var isForeign = false

    public init(
        key: JobKey, alternativeIdentities: [String] = [], jobID: String, serverName: String, ownerUserID: String = "", delayID: String,
        delayTimeout: Int64, restartedAt: Int64, state: State = .waitingForInitialConnect
    ) {
        self.key = key
        self.alternativeIdentities = alternativeIdentities
        self.jobID = jobID
        self.serverName = serverName
        self.ownerUserID = ownerUserID
        self.delayID = delayID
        self.delayTimeout = delayTimeout
        self.restartedAt = restartedAt
        self.state = state
    }

    public var allIdentities: [String] { [key.identity] + alternativeIdentities }

    /// When the scheduler must look at this job next: the earliest unclaimed due time, or the expiry
    /// of a claim (a worker that died holding it).
    public var nextDue: Int64? {
        var times: [Int64] = []
        if let waitingTimerDue { times.append(waitingTimerDue) }
        for activity in [lookup, restart, send].compactMap({ $0 }) {
            times.append(activity.claim?.expires ?? activity.due)
        }
        return times.min()
    }
}

/// A retried activity (participant lookup, restart sequence, send sequence): when it runs next,
/// its backoff state (§8.7) and who is running it now.
public struct Activity: Sendable, Equatable {
    public var due: Int64
    /// The current backoff interval.
    public var interval: Int64 = 1000
    /// Start of the current retry sequence; nil until its first attempt (a restart timer has not fired yet).
    public var sequenceStart: Int64?
    /// How long the sequence may run (E).
    public var maxElapsed: Int64

    public var claim: Claim?

    public init(due: Int64, interval: Int64 = 1000, sequenceStart: Int64?, maxElapsed: Int64, claim: Claim? = nil) {
        self.due = due
        self.interval = interval
        self.sequenceStart = sequenceStart
        self.maxElapsed = maxElapsed
        self.claim = claim
    }
}

/// A worker's lease on one attempt of an activity; an expired lease may be taken over.
public struct Claim: Sendable, Equatable {
    public var owner: String
    public var expires: Int64

    public init(owner: String, expires: Int64) {
        self.owner = owner
        self.expires = expires
    }
}
