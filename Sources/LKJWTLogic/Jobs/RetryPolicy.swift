/// Exponential backoff of contract §8.7: 1 s initial, ×1.5, ±50 % jitter, at most 60 s between
/// attempts, never sleeping past the activity's max elapsed time.
public enum RetryPolicy {
    public static let initialInterval: Int64 = 1000
    public static let multiplier = 1.5
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
        let delay: Int64
        var nextInterval = min(Int64(Double(interval) * multiplier), maximumInterval)
        if let retryAfter {
            delay = max(0, retryAfter)
            nextInterval = initialInterval
        } else {
            delay = Int64(Double(interval) * (0.5 + random.unitInterval()))
        }
        if (now - sequenceStart) + delay > maxElapsed { return .giveUp }
        return .retry(at: now + delay, nextInterval: nextInterval)
    }
}
