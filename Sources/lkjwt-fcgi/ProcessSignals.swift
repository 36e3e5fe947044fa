import Glibc

/// Signal plumbing for the thread pool: SIGTERM/SIGINT are consumed by one thread with sigwait,
/// SIGUSR1 interrupts blocked accepters, SIGPIPE is ignored (a web server that went away must
/// give EPIPE, not kill the worker).
enum ProcessSignals {
    /// Blocks SIGTERM and SIGINT in this thread and every thread it starts afterwards.
    static func blockTermination() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
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
        sigaction(SIGUSR1, &action, nil)
    }

    static func wait(for set: sigset_t) -> Int32 {
        var set = set
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }
}
