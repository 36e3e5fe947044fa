import LKJWTLogic

/// Job records as stored in SQLite or a Redis hash shared with upstream lk-jwt-service (§8.9).
enum JobRecordFuzzing {
    static let target = FuzzTarget(
        name: "job-record", summary: "DelayedLeaveJob(record:); a parsed record written back reads the same") { bytes in
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
        }
}
