import Glibc

/// A condition variable for threads waiting inside `BlockingMutex.withLock(waiting:)`, whose timed
/// waits run on CLOCK_MONOTONIC. Signalled with that mutex held; used with that one mutex only.
final class LockCondition: @unchecked Sendable {
    let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Wakes one waiter.
    func signal() { pthread_cond_signal(condition) }
    /// Wakes every waiter.
    func broadcast() { pthread_cond_broadcast(condition) }

    /// The absolute CLOCK_MONOTONIC time `pthread_cond_timedwait` wants for `deadline` (one already
    /// passed gives now).
    static func monotonicTime(of deadline: Deadline) -> timespec {
        var limit = timespec()
        clock_gettime(CLOCK_MONOTONIC, &limit)
        let (seconds, attoseconds) = max(deadline.remaining, .zero).components
        let nanoseconds = Int(limit.tv_nsec) + Int(attoseconds / 1_000_000_000)
        limit.tv_sec += Int(min(seconds, Int64(Int32.max))) + nanoseconds / 1_000_000_000
        limit.tv_nsec = nanoseconds % 1_000_000_000
        return limit
    }
}
