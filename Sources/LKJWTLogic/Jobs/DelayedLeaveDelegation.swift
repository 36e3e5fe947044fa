/// A delayed leave event (MSC4140) a client hands over (contract §8.8).
public struct DelayedLeaveHandover: Sendable, Equatable {
    public var serverName: String
    /// The verified Matrix user (`sub`) handing the event over.
    public var ownerUserID = ""
    /// Restart and send as the owner with the as_token (AS-MODE.md B3), not with the delay ID alone.
    public var actsAsOwner = false
    /// The caps this job must fit in (§13.4), decided by how its server was admitted.
    public var quota = JobQuota.unlimited
    public var delayID: String
    /// Milliseconds.
    public var delayTimeout: Int64
    var roomAlias: String
    public var identity: String
    /// Further identities the same member may appear under on the SFU (the legacy `user:device`).
    public var alternativeIdentities: [String] = []
}

/// What the token endpoints need from the delayed-leave jobs: resolving the client-server API
/// before any room is created, then storing the job.
public protocol DelayedLeaveDelegation: Sendable {
    /// The client-server API base URL of a server (§9.1), or nil when it cannot be resolved.
    func clientServerAPIBaseURL(for serverName: String) -> String?
    /// Creates or replaces the job for the handover's key; why not, when it could not be stored.
    func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal?
    /// Applies a verified SFU webhook event to the job watching that participant, if there is one.
    func apply(_ event: JobEvent, room: String, identity: String)
}
