import Glibc

/// A mutex with a condition variable whose timed waits run on CLOCK_MONOTONIC, so that a wall clock
/// stepping neither stretches nor cuts a wait (sem_timedwait and a default condition variable count
/// on CLOCK_REALTIME).
final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<Result>(_ body: () -> Result) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// With the lock held: wakes one waiter, or all of them.
    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }

    /// With the lock held: waits for a signal (or a spurious wake-up) until `deadline`; false when it passed.
    func wait(until deadline: Deadline) -> Bool {
        var limit = LockCondition.monotonicTime(of: deadline)
        return pthread_cond_timedwait(condition, mutex, &limit) != ETIMEDOUT
    }
}
