import Glibc

/// Signal plumbing for the thread pool: the stop signals are consumed by one thread with sigwait,
/// SIGUSR2 interrupts blocked accepters, SIGPIPE is ignored (a web server that went away must
/// give EPIPE, not kill the worker).
enum ProcessSignals {
    /// Graceful stop: SIGTERM, SIGINT, SIGUSR1 (what multiwatch sends its children; lighttpd's
    /// convention) and SIGQUIT (what Debian's multiwatch sends for `-s TERM`).
    static let stopSignals = [SIGTERM, SIGINT, SIGUSR1, SIGQUIT]
    /// Interrupts a thread blocked in accept(); never sent from outside.
    static let wakeSignal = SIGUSR2

    /// Blocks the stop signals in this thread and every thread it starts afterwards.
    static func blockTermination() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in stopSignals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
        return set
    }

    /// A no-op handler without SA_RESTART, so that a blocked accept() returns EINTR.
    static func installWakeHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(wakeSignal, &action, nil)
    }

    static func wait(for set: sigset_t) -> Int32 {
        var set = set
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }
}
