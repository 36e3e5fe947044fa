/// A one-shot event threads wait for with a deadline on the monotonic clock.
final class MonotonicSignal: Sendable {
    private let isOpen = BlockingMutex(false)
    private let opened = LockCondition()

    /// Releases every waiter, present and future.
    func open() {
        isOpen.withLock { $0 = true }
        opened.broadcast()
    }

    /// False when the deadline passed first.
    func wait(until deadline: Deadline) -> Bool {
        isOpen.withLock(waiting: { isOpen in
            isOpen ? .done(true) : deadline.hasPassed ? .done(false) : .wait(opened, until: deadline)
        })
    }
}
