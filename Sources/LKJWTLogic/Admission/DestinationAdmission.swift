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

    /// The requests to one server in flight, and those waiting for one of them to end.
    private struct InFlight {
        var count: Int
        /// When the latest of them was admitted.
        var latest: ContinuousClock.Instant
        var waiting = 0
        /// Signalled when one of them ends; made once per busy period, not per request.
        let ended = LockCondition()
    }

    private struct State {
        var lastAnswer: [String: ContinuousClock.Instant] = [:]
        /// Kept while requests are in flight or waiting.
        var inFlight: [String: InFlight] = [:]
        var total = 0
    }

    public let limits: Limits
    private let clock: any MonotonicClock
    private let state = BlockingMutex(State())

    public init(limits: Limits, clock: any MonotonicClock) {
        self.limits = limits
        self.clock = clock
    }

    private enum Attempt {
        case decided(Decision)
        /// Counted among the server's waiting requests until the next attempt.
        case waitFor(LockCondition, Duration)
    }

    /// Waits no longer than `deadline` (and `probeGrace`).
    func admit(_ destination: String, deadline: Deadline) -> Decision {
        let grace = Deadline(after: limits.probeGrace)
        var waiting = false
        return state.withLock(waiting: { state in
            let waited = waiting
            if waited { state.inFlight[destination]?.waiting -= 1 }
            switch attempt(destination, state: &state, mayWait: !grace.hasPassed && !deadline.hasPassed) {
            case .waitFor(let ended, let limit):
                waiting = true
                return .wait(ended, until: Deadline(after: min(limit, grace.remaining, deadline.remaining)))
            case .decided(let decision):
                waiting = false
                if case .refused = decision, let entry = state.inFlight[destination] {
                    // A wake-up taken by a request that now gives up is passed on: it may have been
                    // meant for a place that another waiting request can use.
                    if waited, entry.waiting > 0 { entry.ended.signal() }
                    if entry.count == 0, entry.waiting == 0 { state.inFlight[destination] = nil }
                }
                return .done(decision)
            }
        })
    }

    /// Admits, refuses, or names what to wait for (the end of one of the server's requests) and how long.
    private func attempt(_ destination: String, state: inout State, mayWait: Bool) -> Attempt {
        let now = clock.now()
        let known = state.lastAnswer[destination].map { $0.duration(to: now) < limits.knownFor } ?? false
        let entry = state.inFlight[destination]
        let overShare = entry.map { $0.count >= limits.perDestination } ?? false
        let overBudget = !known && state.total >= limits.unknownTotal
        if overShare || overBudget {
            // Waiting is worth it only for a server whose latest request began a moment ago: a busy
            // healthy server, or a new one about to answer. A stalling server's requests are old.
            if mayWait, var entry, entry.count > 0 {
                let left = limits.probeGrace - entry.latest.duration(to: now)
                if left > .zero {
                    entry.waiting += 1
                    state.inFlight[destination] = entry
                    return .waitFor(entry.ended, left)
                }
            }
            if let entry, overShare {
                return .decided(.refused(reason: "\(entry.count) requests to this server are in flight (limit \(limits.perDestination))"))
            }
            return .decided(.refused(reason: "\(state.total) requests to servers not known to answer are in flight (limit \(limits.unknownTotal))"))
        }
        var updated = entry ?? InFlight(count: 0, latest: now)
        updated.count += 1
        updated.latest = now
        state.inFlight[destination] = updated
        if known { return .decided(.known) }
        state.total += 1
        return .decided(.admitted)
    }

    /// Ends what `admit` began. `answered`: the server gave an HTTP answer (any status), so it is
    /// known from now on; false: it never answered, so it is not known any more, whatever it did before.
    public func finish(_ destination: String, decision: Decision, answered: Bool) {
        let now = clock.now()
        let wake = state.withLock { state -> (LockCondition, all: Bool)? in
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
            guard entry.waiting > 0 else {
                state.inFlight[destination] = entry.count > 0 ? entry : nil
                return nil
            }
            state.inFlight[destination] = entry
            // One ended request makes room for one waiting request; when none is left in flight,
            // there is nothing more to wait for, and every waiting request decides again.
            return (entry.ended, all: entry.count == 0)
        }
        // Outside the lock, so that the woken thread does not find it taken.
        if let (ended, all) = wake { all ? ended.broadcast() : ended.signal() }
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
