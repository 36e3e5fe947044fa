/// The deployment-wide claim on the membership sweep (AS-MODE.md B4): one record in the job store
/// that every worker of every host tries to take, so that the deployment sweeps once per interval,
/// not once per process. Like a job claim (contract §8.10 rule 4) it has an owner and a lease, and
/// a gone owner's lease is taken over at once.
public struct MembershipSweepLease: Sendable, Equatable {
    /// The next sweep may start at this time (Unix milliseconds).
    public var nextDue: Int64
    /// The process sweeping now, if any, and until when its lease holds.
    public var owner: String?
    public var leaseExpires: Int64

    public init(nextDue: Int64, owner: String? = nil, leaseExpires: Int64 = 0) {
        self.nextDue = nextDue
        self.owner = owner
        self.leaseExpires = leaseExpires
    }

    public enum Claim: Sendable, Equatable {
        case claimed
        /// Not ours: try again at this time.
        case notDue(retryAt: Int64)
    }

    /// The one rule every store applies atomically to its stored lease (nil: none yet, the first sweep
    /// is due at once). Returns the claim and, when claimed, the lease to store.
    public static func claim(
        _ stored: MembershipSweepLease?, owner: String, now: Int64, interval: Int64, lease: Int64, goneOwners: Set<String>
    ) -> (Claim, MembershipSweepLease?) {
        if let stored {
            // A due time further away than one interval is no time this rule wrote (another clock, a
            // damaged record): it must not stop the sweeps.
            if stored.nextDue > now, stored.nextDue <= now.saturatingAdding(interval) { return (.notDue(retryAt: stored.nextDue), nil) }
            if let holder = stored.owner, holder != owner, stored.leaseExpires > now, !goneOwners.contains(holder) {
                // A sweep is running elsewhere; its end is not announced, so look again soon.
                return (.notDue(retryAt: min(stored.leaseExpires, now.saturatingAdding(250))), nil)
            }
        }
        let claimed = MembershipSweepLease(nextDue: now.saturatingAdding(interval), owner: owner, leaseExpires: now.saturatingAdding(lease))
        return (.claimed, claimed)
    }

    /// The lease after `owner` finished its sweep; nil if it is not `owner`'s (taken over meanwhile).
    public static func release(_ stored: MembershipSweepLease?, owner: String) -> MembershipSweepLease? {
        guard var lease = stored, lease.owner == owner else { return nil }
        lease.owner = nil
        lease.leaseExpires = 0
        return lease
    }

    /// Stored as a small JSON object.
    public func record() -> String {
        var members = [JSONMember("next_due", .integer(nextDue))]
        if let owner {
            members += [JSONMember("owner", .string(owner)), JSONMember("lease_expires", .integer(leaseExpires))]
        }
        return JSONValue.object(members).serialized()
    }

    /// nil for anything unreadable: a broken lease record is replaced by the next claim.
    public init?(record: String) {
        guard let document = try? JSONParser.parse(Array(record.utf8)), let nextDue = document["next_due"]?.int64Value else { return nil }
        self.nextDue = nextDue
        owner = document["owner"]?.stringValue
        leaseExpires = document["lease_expires"]?.int64Value ?? 0
    }
}
