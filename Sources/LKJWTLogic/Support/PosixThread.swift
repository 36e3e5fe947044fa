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

/// A counting semaphore with a timed wait on the monotonic clock, for waking worker threads.
public final class Semaphore: Sendable {
    private let value: BlockingMutex<UInt32>
    private let signalled = LockCondition()

    public init(value: UInt32 = 0) {
        self.value = BlockingMutex(value)
    }

    public func signal() {
        value.withLock { $0 += 1 }
        signalled.signal()
    }

    /// False when the timeout passed without a signal.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        let deadline = Deadline(after: timeout)
        return value.withLock(waiting: { value in
            if value > 0 {
                value -= 1
                return .done(true)
            }
            return deadline.hasPassed ? .done(false) : .wait(signalled, until: deadline)
        })
    }
}
