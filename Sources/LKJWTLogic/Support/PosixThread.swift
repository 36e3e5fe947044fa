import Glibc

/// A plain pthread running a closure: the blocking-thread model of libfcgi and libcurl, without
/// Swift concurrency executors in between.
public final class PosixThread: @unchecked Sendable {
    private var handle = pthread_t()

    /// nil when the system refuses another thread.
    public static func start(_ body: @escaping @Sendable () -> Void) -> PosixThread? {
        let thread = PosixThread()
        let context = Unmanaged.passRetained(Entry(body)).toOpaque()
        guard pthread_create(&thread.handle, nil, { context in
            Unmanaged<Entry>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context) == 0 else {
            Unmanaged<Entry>.fromOpaque(context).release()
            return nil
        }
        return thread
    }

    /// The pthread, for pthread_kill from another thread.
    public var id: pthread_t { handle }

    public func join() {
        pthread_join(handle, nil)
    }

    private final class Entry {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

/// A counting semaphore with a timed wait, for waking worker threads.
public final class Semaphore: @unchecked Sendable {
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    public init(value: UInt32 = 0) {
        sem_init(semaphore, 0, value)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    public func signal() {
        sem_post(semaphore)
    }

    /// False when the timeout passed without a signal.
    @discardableResult
    public func wait(milliseconds: Int64) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanoseconds = Int64(deadline.tv_nsec) + milliseconds % 1000 * 1_000_000
        deadline.tv_sec += Int(milliseconds / 1000 + nanoseconds / 1_000_000_000)
        deadline.tv_nsec = Int(nanoseconds % 1_000_000_000)
        while sem_timedwait(semaphore, &deadline) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }
}
