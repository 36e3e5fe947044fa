import FoundationEssentials
import LKJWTLogic

/// The real time of day.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// The real monotonic clock.
public struct SystemMonotonicClock: MonotonicClock {
    public init() {}
    public func now() -> ContinuousClock.Instant { .now }
}
