import LKJWTLogic

/// TEMPORARY — delete this file and its three calls (RetryAfterFuzzing.swift, JobRecordFuzzing.swift)
/// once the `numbers` branch (overflow-safe arithmetic for hints and stored times, issue 7 point 4,
/// contract §13.5) is merged. Inputs that trap or wrap on main 67dc315 are skipped here, so that the
/// fuzzer keeps looking for other findings meanwhile.
enum KnownOverflows {
    /// DelayedEventClient.retryAfter: `Retry-After` seconds × 1000 wraps above Int64.max / 1000 (to a
    /// negative hint); `retry_after_ms` + 999 traps above Int64.max − 999.
    static func retryAfterTraps(header: String?, body: [UInt8]) -> Bool {
        if let header {
            var digits = Substring(header.filter { $0 != " " && $0 != "\t" })
            if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
            if let seconds = Int64(digits), seconds > Int64.max / 1000 { return true }
        }
        if let milliseconds = (try? JSONParser.parse(body))?["retry_after_ms"]?.int64Value, milliseconds > Int64.max - 999 { return true }
        return false
    }

    /// RetryPolicy.next: `(now − sequenceStart) + delay` traps for hints near Int64.max.
    static func retryPolicyTraps(hint: Int64?) -> Bool {
        (hint ?? 0) > Int64.max / 2
    }

    /// JobMachine on a stored job: differences such as `deadline − now` in sendWindow (seen with
    /// `RestartDeadline` −2^63) or `now − sequenceStart` trap. Skipped: any stored number beyond
    /// ±2^50 ms (35,000 years).
    static func jobMachineTraps(_ job: DelayedLeaveJob) -> Bool {
        var numbers = [job.delayTimeout, job.version, job.waitingTimerDue ?? 0, job.restartDeadline ?? 0]
        for activity in [job.lookup, job.restart, job.send].compactMap({ $0 }) {
            numbers += [activity.due, activity.interval, activity.sequenceStart ?? 0, activity.maxElapsed, activity.claim?.expires ?? 0]
        }
        return numbers.contains { $0.magnitude > 1 << 50 }
    }
}
