/// A one-shot event threads wait for with a deadline on the monotonic clock.
final class MonotonicSignal: @unchecked Sendable {
    private let condition = MonotonicCondition()
    /// Guarded by `condition`.
    private var isOpen = false

    /// Releases every waiter, present and future.
    func open() {
        condition.withLock {
            isOpen = true
            condition.broadcast()
        }
    }

    /// False when the deadline passed first.
    func wait(until deadline: Deadline) -> Bool {
        condition.withLock {
            while !isOpen {
                if !condition.wait(until: deadline) { return isOpen }
            }
            return true
        }
    }
}
