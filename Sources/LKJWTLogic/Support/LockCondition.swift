import Glibc

/// A condition variable whose timed waits run on CLOCK_MONOTONIC, so that a wall clock stepping
/// neither stretches nor cuts a wait (sem_timedwait and a default condition variable count on
/// CLOCK_REALTIME), for threads waiting inside `BlockingMutex.withLock(waiting:)`; used with one
/// mutex only.
final class LockCondition: @unchecked Sendable {
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

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

    /// With `mutex` held: releases it while waiting for a signal (or a spurious wake-up) until
    /// `deadline`, and takes it again; false when the deadline passed.
    func wait(releasing mutex: UnsafeMutablePointer<pthread_mutex_t>, until deadline: Deadline) -> Bool {
        var limit = timespec()
        clock_gettime(CLOCK_MONOTONIC, &limit)
        let (seconds, attoseconds) = max(deadline.remaining, .zero).components
        let nanoseconds = Int(limit.tv_nsec) + Int(attoseconds / 1_000_000_000)
        limit.tv_sec += Int(min(seconds, Int64(Int32.max))) + nanoseconds / 1_000_000_000
        limit.tv_nsec = nanoseconds % 1_000_000_000
        return pthread_cond_timedwait(condition, mutex, &limit) != ETIMEDOUT
    }
}
