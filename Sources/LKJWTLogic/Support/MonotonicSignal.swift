import Glibc

/// A one-shot event threads wait for with a deadline on the monotonic clock, so that a wall clock
/// stepping does not stretch or cut the wait.
final class MonotonicSignal: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Guarded by `mutex`.
    private var isOpen = false

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

    /// Releases every waiter, present and future.
    func open() {
        pthread_mutex_lock(mutex)
        isOpen = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// False when the deadline passed first.
    func wait(until deadline: Deadline) -> Bool {
        var limit = timespec()
        clock_gettime(CLOCK_MONOTONIC, &limit)
        let (seconds, attoseconds) = max(deadline.remaining, .zero).components
        let nanoseconds = Int(limit.tv_nsec) + Int(attoseconds / 1_000_000_000)
        limit.tv_sec += Int(min(seconds, Int64(Int32.max))) + nanoseconds / 1_000_000_000
        limit.tv_nsec = nanoseconds % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !isOpen {
            if pthread_cond_timedwait(condition, mutex, &limit) == ETIMEDOUT { return isOpen }
        }
        return true
    }
}
