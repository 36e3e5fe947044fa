import LKJWTLogic

/// TEMPORARY — delete this file and its two calls in RetryAfterFuzzing.swift once the `numbers` branch
/// (saturating arithmetic for hints, issue 7 point 4) is merged. Inputs that trap or wrap in
/// DelayedEventClient.retryAfter / RetryPolicy.next on main 67dc315, which `numbers` fixes: skipped
/// here so that the fuzzer looks for other findings meanwhile.
enum KnownOverflows {
    /// `Retry-After` seconds × 1000 wraps above Int64.max / 1000; `retry_after_ms` + 999 traps above
    /// Int64.max − 999.
    static func retryAfterTraps(header: String?, body: [UInt8]) -> Bool {
        if let header {
            var digits = Substring(header.filter { $0 != " " && $0 != "\t" })
            if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
            if let seconds = Int64(digits), seconds > Int64.max / 1000 { return true }
        }
        if let milliseconds = (try? JSONParser.parse(body))?["retry_after_ms"]?.int64Value, milliseconds > Int64.max - 999 { return true }
        return false
    }

    /// `(now − sequenceStart) + delay` traps for hints near Int64.max.
    static func retryPolicyTraps(hint: Int64?) -> Bool {
        (hint ?? 0) > Int64.max / 2
    }
}
