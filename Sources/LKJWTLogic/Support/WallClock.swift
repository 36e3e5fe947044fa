import FoundationEssentials

/// The time source of the logic: token issue times, job due times. Injected so tests can fix "now".
public protocol WallClock: Sendable {
    func now() -> Date
}

/// A point on the monotonic clock by which a piece of work must be done (verification budget, timeouts).
public struct Deadline: Sendable {
    public let instant: ContinuousClock.Instant

    public init(after duration: Duration) {
        instant = ContinuousClock.now.advanced(by: duration)
    }

    public var remaining: Duration {
        ContinuousClock.now.duration(to: instant)
    }

    public var hasPassed: Bool { remaining <= .zero }

    /// `limit`, shortened to what is left of the deadline.
    public func capped(_ limit: Duration) -> Duration {
        min(limit, max(remaining, .zero))
    }
}

extension Duration {
    /// Saturating: cache lifetimes and timeouts may derive from remote numbers (§13.5).
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds.saturatingMultiplied(by: 1000).saturatingAdding(attoseconds / 1_000_000_000_000_000)
    }
}

extension Date {
    /// Unix milliseconds, rounded down; saturating, since a clock (or a test clock) is outside input too.
    public var unixMilliseconds: Int64 {
        Int64(saturating: (timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Unix seconds, rounded down; saturating.
    var unixSeconds: Int64 {
        Int64(saturating: timeIntervalSince1970.rounded(.down))
    }
}
