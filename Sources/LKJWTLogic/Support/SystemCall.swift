import Glibc

/// A system call that failed, with the errno it left: read right after the call, before a string
/// built for the message (an allocation) could change it.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// The system's text for the errno, as the contract prints OS errors (§2.2).
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(reason)" }
}

/// The one way system calls are made where their failure matters: EINTR retried, errno captured first
/// (the model is swift-nio's `syscall` in NIOPosix/System.swift).
public enum SystemCall {
    /// Runs `body`, a call that returns -1 and sets errno on failure, again while it fails with EINTR.
    @discardableResult
    public static func run<Result: SignedInteger>(_ call: String, _ body: () -> Result) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            guard result == -1 else { return result }
            let code = Glibc.errno
            guard code == EINTR else { throw SystemCallError(call, errno: code) }
        }
    }

    /// Runs `body`, a call that returns NULL and sets errno on failure, again while it fails with EINTR.
    public static func pointer<Pointer>(_ call: String, _ body: () -> Pointer?) throws(SystemCallError) -> Pointer {
        while true {
            if let pointer = body() { return pointer }
            let code = Glibc.errno
            guard code == EINTR else { throw SystemCallError(call, errno: code) }
        }
    }

    /// The failure of a call that just returned its failure value, errno read now: call it first.
    public static func lastError(_ call: String) -> SystemCallError {
        let code = Glibc.errno
        return SystemCallError(call, errno: code)
    }

    /// Sleeps the whole `duration`: a signal that interrupts it does not cut it short.
    public static func sleep(for duration: Duration) {
        let (seconds, attoseconds) = max(duration, .zero).components
        var remaining = timespec(tv_sec: Int(clamping: seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var left = timespec()
        while nanosleep(&remaining, &left) == -1, Glibc.errno == EINTR {
            remaining = left
        }
    }
}
