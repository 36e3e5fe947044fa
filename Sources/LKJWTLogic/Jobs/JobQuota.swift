/// The caps on live delayed-leave jobs (contract §13.4, §8.8 rev. 2). A store checks them in the
/// same atomic operation that creates the job, so concurrent requests cannot overshoot them;
/// replacing the job of an existing key never counts as new.
public struct JobQuota: Sendable, Equatable {
    public enum Cap: String, Sendable, Equatable {
        /// The user (`sub`) has `perUser` live jobs.
        case user
        /// The server name has `perServer` live jobs.
        case server
    }

    static let jobsPerUser = 32
    /// Only for servers admitted through `*`: the operator vouches for servers it lists.
    static let jobsPerWildcardServer = 1000

    /// Live jobs one owner may have; nil: no cap. A job without owner is never capped by it.
    public var perUser: Int?
    /// Live jobs one server name may have; nil: no cap.
    public var perServer: Int?

    public init(perUser: Int?, perServer: Int?) {
        self.perUser = perUser
        self.perServer = perServer
    }

    public static let unlimited = JobQuota(perUser: nil, perServer: nil)

    /// The contract's caps for a server admitted through `*` (per-server cap) or listed explicitly (none).
    public static func standard(serverAdmittedByWildcard: Bool) -> JobQuota {
        JobQuota(perUser: jobsPerUser, perServer: serverAdmittedByWildcard ? jobsPerWildcardServer : nil)
    }
}

/// What creating a job did.
public enum JobCreation: Sendable, Equatable {
    case created
    /// The key held a job; the new one replaced it (`JobReplaced`).
    case replaced(jobID: String)
    /// The key held a record that cannot be parsed; the new job took its place.
    case replacedUnparsable(reason: String)
    /// Nothing was written: a cap of the quota is reached.
    case refused(JobQuota.Cap)
}

extension JobCreation {
    /// What storing a new job over `record` (nil: the key is free) is, with the job it replaces when
    /// that record parses; every store decides this the same way.
    package static func over(_ record: String?) -> (creation: JobCreation, replaced: DelayedLeaveJob?) {
        guard let record else { return (.created, nil) }
        do throws(DelayedLeaveJob.RecordError) {
            let replaced = try DelayedLeaveJob(record: record)
            return (.replaced(jobID: replaced.jobID), replaced)
        } catch {
            return (.replacedUnparsable(reason: error.description), nil)
        }
    }
}
