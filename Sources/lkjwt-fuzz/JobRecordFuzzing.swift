import LKJWTLogic

/// Job records as stored in SQLite or a Redis hash shared with upstream lk-jwt-service (§8.9), and
/// what a worker then does with one: recovery, events, claiming and completing its work.
enum JobRecordFuzzing {
    static let now: Int64 = 1_700_000_000_000
    static let outcomes: [JobMachine.Outcome] = [
        .delayedEvent(.retry(after: nil, reason: "503")), .delayedEvent(.success), .presence(.present), .delayedEvent(.retry(after: 2000, reason: "429")),
        .presence(.absent), .delayedEvent(.notFound), .presence(.unknown("timeout")), .clientServerAPIUnresolvable("no well-known"),
    ]

    static let target = FuzzTarget(
        name: "job-record", summary: "DelayedLeaveJob(record:); written back reads the same; the job machine on it writes readable records") { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            guard let job = try? DelayedLeaveJob(record: text) else { return }
            _ = job.nextDue
            let written = job.record()
            guard var again = try? DelayedLeaveJob(record: written) else {
                invariant(false, "a written record does not read back: \(written.debugDescription)")
                return
            }
            // A foreign record (no Engine) is written back with ours; everything else must survive.
            invariant(!again.isForeign, "a written record reads as foreign")
            again.isForeign = job.isForeign
            invariant(again == job, "record round trip changed the job: \(written.debugDescription)")
            invariant(again.record() == written, "writing is not stable")

            let choice = bytes.reduce(0) { $0 &+ Int($1) }
            if case .keep(let recovered) = JobMachine.recover(job, now: now, newJobID: "recovered") {
                checkWritable(recovered)
            }
            var current: DelayedLeaveJob? = job
            var clock = now
            let settings = JobMachine.Settings(sanityInterval: .seconds(30))
            for round in 0..<4 {
                let event = JobEvent.allCases[(choice + round) % JobEvent.allCases.count]
                _ = JobMachine.apply(event, to: &current, now: clock)
                let (work, _) = JobMachine.claimDueWork(&current, now: clock, owner: "fuzz", settings: settings)
                for (index, item) in work.enumerated() {
                    _ = JobMachine.complete(
                        &current, work: item, outcome: outcomes[(choice / 7 + round + index) % outcomes.count], now: clock,
                        random: FixedRandomSource(), settings: settings)
                }
                guard let job = current else { return }
                checkWritable(job)
                guard let due = job.nextDue, due > clock, due - clock < 86_400_000 else { return }
                clock = due
            }
        }

    /// What the machine stores must read back: a record no worker can parse would be a lost job.
    static func checkWritable(_ job: DelayedLeaveJob) {
        let written = job.record()
        invariant((try? DelayedLeaveJob(record: written)) != nil, "the machine wrote an unreadable record: \(written.debugDescription)")
    }
}
