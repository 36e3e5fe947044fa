import Glibc

/// A lock for state that every request takes, over glibc's default pthread mutex: a thread that
/// finds it taken sleeps at once, and an unlock leaves it free for whichever thread runs next.
/// `Synchronization.Mutex` on Linux spins a thousand times first, then hands the lock to the
/// sleeping waiter (a PI futex). On a service pinned to one CPU the spinning keeps the owner from
/// running, and the hand-over to a thread not yet running makes the next locker collide and spin
/// in turn: profiles of `/get_token` showed 8% of its CPU spent spinning on `DestinationAdmission`.
final class BlockingMutex<Value: Sendable>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// Guarded by `mutex`.
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// What a `withLock(waiting:)` body decides: it is done, or it waits (the lock released) for
    /// `condition` or `deadline`, whichever comes first, and is then called again.
    enum Step<Result> {
        case done(Result)
        case wait(LockCondition, until: Deadline)
    }

    /// Like `withLock`, for a body that may have to wait for other threads to change the value: each
    /// call of `body` is one access to it, so nothing is assumed about the value across a wait.
    func withLock<Result>(waiting body: (inout Value) -> Step<Result>) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            switch body(&value) {
            case .done(let result):
                return result
            case .wait(let condition, let deadline):
                _ = condition.wait(releasing: mutex, until: deadline)
            }
        }
    }
}
