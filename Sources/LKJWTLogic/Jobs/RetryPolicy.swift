/// Exponential backoff of contract §8.7: 1 s initial, ×1.5, ±50 % jitter, at most 60 s between
/// attempts, never sleeping past the activity's max elapsed time.
public enum RetryPolicy {
    static let initialInterval: Int64 = 1000
    static let multiplier = 1.5
    public static let maximumInterval: Int64 = 60_000

    public enum Decision: Equatable, Sendable {
        case retry(at: Int64, nextInterval: Int64)
        case giveUp
    }

    /// After a failed attempt at `now`: when to try again, given the interval so far and an optional
    /// server hint (which replaces the delay and resets the interval).
    public static func next(
        after now: Int64, interval: Int64, sequenceStart: Int64, maxElapsed: Int64, retryAfter: Int64?, random: any RandomSource
    ) -> Decision {
        // Every input may come from a stored record or a remote server (§13.5): an interval outside
        // the policy's range is brought back into it, a clock that stepped back counts as no time
        // elapsed, and the hint is compared with what is left, never added to before that.
        let interval = interval.clamped(to: initialInterval...maximumInterval)
        let elapsed = max(0, now.saturatingSubtracting(sequenceStart))
        let remaining = maxElapsed.saturatingSubtracting(elapsed)
        let delay: Int64
        var nextInterval = min(Int64(Double(interval) * multiplier), maximumInterval)
        if let retryAfter {
            guard retryAfter <= remaining else { return .giveUp }
            delay = max(0, retryAfter)
            nextInterval = initialInterval
        } else {
            delay = Int64(saturating: Double(interval) * (0.5 + random.unitInterval()))
        }
        if delay > remaining { return .giveUp }
        return .retry(at: now.saturatingAdding(delay), nextInterval: nextInterval)
    }
}
