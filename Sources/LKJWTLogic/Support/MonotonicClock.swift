/// Time for budgets and "answered recently": monotonic, so a wall clock step changes neither.
/// Injected so tests can move it.
public protocol MonotonicClock: Sendable {
    func now() -> ContinuousClock.Instant
}
