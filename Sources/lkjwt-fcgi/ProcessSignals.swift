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

    private static var stopSet: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in stopSignals { sigaddset(&set, signal) }
        return set
    }

    /// Blocks the stop signals in this thread and every thread it starts afterwards. Must run before
    /// the process starts its first thread (contract §13.6): a process-directed signal goes to any
    /// thread that does not block it, and there it would end the process at once, without the drain
    /// and without handing the scheduler's claims back. One that arrives before `waitForStop` stays
    /// pending until then; one that arrives after (a second SIGTERM while draining) is never taken.
    static func blockStopSignals() {
        var set = stopSet
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Plain CGI has nothing to drain and no claims: a stop signal (also one already pending) ends
    /// the process the default way, as the web server sending it expects.
    static func unblockStopSignals() {
        var set = stopSet
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Whether the calling thread blocks every stop signal; threads inherit this mask.
    static var stopSignalsBlocked: Bool {
        var current = sigset_t()
        pthread_sigmask(SIG_BLOCK, nil, &current)
        return stopSignals.allSatisfy { sigismember(&current, $0) == 1 }
    }

    /// A no-op handler without SA_RESTART, so that a blocked accept() returns EINTR.
    static func installWakeHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(wakeSignal, &action, nil)
    }

    /// The first stop signal, including one that arrived (and stayed pending) during start-up.
    static func waitForStop() -> Int32 {
        var set = stopSet
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }
}
