import Glibc

/// A mutex with a condition variable whose timed waits run on CLOCK_MONOTONIC, so that a wall clock
/// stepping neither stretches nor cuts a wait (sem_timedwait and a default condition variable count
/// on CLOCK_REALTIME).
final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = LockCondition()

    init() {
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result>(_ body: () -> Result) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// With the lock held: wakes one waiter, or all of them.
    func signal() { condition.signal() }
    func broadcast() { condition.broadcast() }

    /// With the lock held: waits for a signal (or a spurious wake-up) until `deadline`; false when it passed.
    func wait(until deadline: Deadline) -> Bool {
        condition.wait(releasing: mutex, until: deadline)
    }
}
