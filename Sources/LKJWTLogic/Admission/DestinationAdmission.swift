import Synchronization

/// Keeps servers that are not known to answer from taking the threads that servers known to
/// answer need (contract §13.3). A worker thread waits for its outbound calls, so a server that
/// accepts connections and never answers holds one thread per request for the whole 10 s budget.
/// Servers that gave an HTTP answer within the last 10 minutes pass freely; the others share a
/// budget of threads, which leaves a reserve that only known servers can use. A request over budget
/// is answered at once (503), which costs microseconds, instead of waiting for a thread.
///
/// One exception keeps a burst of users of a new, healthy server from being refused: a request
/// over budget for a server that was first asked a moment ago (within `probeGrace`) waits, that
/// long at most, for one of those requests to end; if the server answered, it is known and passes.
/// Silent servers gain nothing from this: their requests are older than the grace.
///
/// And no one server, known or not, holds more than half the threads: a known server that turns
/// silent (it answered once, then stalls a burst of requests) would otherwise take them all. A
/// request over that share waits, under the same rule, for one of the server's requests to end,
/// which for a busy healthy server is a matter of milliseconds.
///
/// Why budgets and not event-driven outbound I/O: libfcgi answers a request on the thread that
/// accepted it, so curl multi would free no FastCGI thread unless the whole responder became
/// asynchronous; the budget bounds what silence can cost with a few counters.
public final class DestinationAdmission: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Requests to servers not known to answer in flight at once.
        var unknownTotal: Int
        /// Requests to any one server in flight at once.
        var perDestination: Int
        /// An answer makes a server known for this long.
        var knownFor: Duration = .seconds(600)
        /// How recent a server's latest admitted request must be for an over-budget request to wait for it.
        var probeGrace: Duration = .milliseconds(500)
        /// Servers remembered at most (names come from clients).
        public var capacity = 10_000

        public init(unknownTotal: Int, perDestination: Int? = nil) {
            self.unknownTotal = max(1, unknownTotal)
            self.perDestination = max(1, perDestination ?? unknownTotal)
        }

        /// Half the threads only for servers known to answer, the other half for all: a known
        /// server's requests wait for their homeserver too, so a smaller reserve cost throughput
        /// (bench/hostile.py: a quarter of 16 threads gave 57–101 % of the unattacked throughput).
        public init(threads: Int) {
            self.init(unknownTotal: threads / 2, perDestination: threads / 2)
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Answered recently: counted only against the server's own share.
        case known
        /// Counted against the budget until `finish`.
        case admitted
        case refused(reason: String)
    }

    private final class Destination: Sendable {
        /// Opened, and replaced, whenever a request to this server ends.
        let ended = Mutex(MonotonicSignal())
    }

    private struct State {
        var lastAnswer: [String: ContinuousClock.Instant] = [:]
        var inFlight: [String: (count: Int, latest: ContinuousClock.Instant, destination: Destination)] = [:]
        var total = 0
    }

    private enum Attempt {
        case decided(Decision)
        case waitFor(MonotonicSignal, Duration)
    }

    public let limits: Limits
    private let clock: any MonotonicClock
    private let state = BlockingMutex(State())

    public init(limits: Limits, clock: any MonotonicClock) {
        self.limits = limits
        self.clock = clock
    }

    /// Waits no longer than `deadline` (and `probeGrace`).
    func admit(_ destination: String, deadline: Deadline) -> Decision {
        let grace = Deadline(after: limits.probeGrace)
        while true {
            switch attempt(destination, mayWait: !grace.hasPassed && !deadline.hasPassed) {
            case .decided(let decision):
                return decision
            case .waitFor(let signal, let limit):
                _ = signal.wait(until: Deadline(after: min(limit, grace.remaining, deadline.remaining)))
            }
        }
    }

    /// Admits, refuses, or names what to wait for (the end of one of the server's requests) and how long.
    private func attempt(_ destination: String, mayWait: Bool) -> Attempt {
        let now = clock.now()
        return state.withLock { state in
            let known = state.lastAnswer[destination].map { $0.duration(to: now) < limits.knownFor } ?? false
            let entry = state.inFlight[destination]
            // Waiting is worth it only for a server whose latest request began a moment ago: a busy
            // healthy server, or a new one about to answer. A stalling server's requests are old.
            let left = entry.map { limits.probeGrace - $0.latest.duration(to: now) } ?? .zero
            if let entry, entry.count >= limits.perDestination {
                if mayWait, left > .zero { return .waitFor(entry.destination.ended.withLock { $0 }, left) }
                return .decided(.refused(reason: "\(entry.count) requests to this server are in flight (limit \(limits.perDestination))"))
            }
            if !known && state.total >= limits.unknownTotal {
                if mayWait, left > .zero, let entry { return .waitFor(entry.destination.ended.withLock { $0 }, left) }
                return .decided(.refused(reason: "\(state.total) requests to servers not known to answer are in flight (limit \(limits.unknownTotal))"))
            }
            var updated = entry ?? (0, now, Destination())
            updated.count += 1
            updated.latest = now
            state.inFlight[destination] = updated
            if known { return .decided(.known) }
            state.total += 1
            return .decided(.admitted)
        }
    }

    /// Ends what `admit` began. `answered`: the server gave an HTTP answer (any status), so it is
    /// known from now on; false: it never answered, so it is not known any more, whatever it did before.
    public func finish(_ destination: String, decision: Decision, answered: Bool) {
        let now = clock.now()
        // Made before taking the lock: every request passes here, and on a service pinned to one CPU
        // a thread preempted while holding the lock costs every other thread that wants it a spin.
        let replacement = MonotonicSignal()
        let ended = state.withLock { state -> MonotonicSignal? in
            if answered {
                if state.lastAnswer[destination] == nil, state.lastAnswer.count >= limits.capacity { forgetOldest(&state, now: now) }
                state.lastAnswer[destination] = now
            } else {
                state.lastAnswer[destination] = nil
            }
            if case .refused = decision { return nil }
            guard var entry = state.inFlight[destination] else { return nil }
            if decision == .admitted { state.total = max(0, state.total - 1) }
            entry.count -= 1
            state.inFlight[destination] = entry.count > 0 ? entry : nil
            return entry.destination.ended.withLock { signal in
                defer { signal = replacement }
                return signal
            }
        }
        ended?.open()
    }

    /// Drops servers whose answer is too old to count; if none is, the one that answered longest ago.
    private func forgetOldest(_ state: inout State, now: ContinuousClock.Instant) {
        let before = state.lastAnswer.count
        state.lastAnswer = state.lastAnswer.filter { $0.value.duration(to: now) < limits.knownFor }
        if state.lastAnswer.count == before, let oldest = state.lastAnswer.min(by: { $0.value < $1.value }) {
            state.lastAnswer[oldest.key] = nil
        }
    }
}
