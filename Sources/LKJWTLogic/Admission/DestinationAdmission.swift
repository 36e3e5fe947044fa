import Synchronization

/// Keeps servers that are not known to answer from taking the threads that servers known to
/// answer need (contract §13.3). A worker thread waits for its outbound calls, so a server that
/// accepts connections and never answers holds one thread per request for the whole 10 s budget.
/// Servers that gave an HTTP answer within the last 10 minutes pass freely; the others share a
/// global budget of threads, and one of them may take only part of it. A request over budget is
/// answered at once (503), which costs microseconds, instead of waiting for a thread.
///
/// Why budgets and not event-driven outbound I/O: libfcgi answers a request on the thread that
/// accepted it, so curl multi would free no FastCGI thread unless the whole responder became
/// asynchronous; the budget bounds what silence can cost with a few counters.
public final class DestinationAdmission: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Requests to servers not known to answer in flight at once, in all.
        public var unknownTotal: Int
        /// The same, for one server.
        public var unknownPerDestination: Int
        /// An answer makes a server known for this long.
        public var knownFor: Duration = .seconds(600)
        /// Servers remembered at most (names come from clients).
        public var capacity = 10_000

        public init(unknownTotal: Int, unknownPerDestination: Int) {
            self.unknownTotal = max(1, unknownTotal)
            self.unknownPerDestination = max(1, unknownPerDestination)
        }

        /// Half the threads for servers not known to answer, a quarter for any one of them: the
        /// other half always remains for servers known to answer.
        public init(threads: Int) {
            self.init(unknownTotal: threads / 2, unknownPerDestination: threads / 4)
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Answered recently: not counted.
        case known
        /// Counted against the budgets until `finish`.
        case admitted
        case refused(reason: String)
    }

    private struct State {
        var lastAnswer: [String: ContinuousClock.Instant] = [:]
        var inFlight: [String: Int] = [:]
        var total = 0
    }

    public let limits: Limits
    private let clock: any MonotonicClock
    private let state = Mutex(State())

    public init(limits: Limits, clock: any MonotonicClock = SystemMonotonicClock()) {
        self.limits = limits
        self.clock = clock
    }

    public func admit(_ destination: String) -> Decision {
        let now = clock.now()
        return state.withLock { state in
            if let answered = state.lastAnswer[destination], answered.duration(to: now) < limits.knownFor { return .known }
            let current = state.inFlight[destination, default: 0]
            if state.total >= limits.unknownTotal {
                return .refused(reason: "\(state.total) requests to servers not known to answer are in flight (limit \(limits.unknownTotal))")
            }
            if current >= limits.unknownPerDestination {
                return .refused(reason: "\(current) requests to this server are in flight and it is not known to answer (limit \(limits.unknownPerDestination))")
            }
            state.inFlight[destination] = current + 1
            state.total += 1
            return .admitted
        }
    }

    /// Ends what `admit` began. `answered`: the server gave an HTTP answer (any status), so it is
    /// known from now on; false: it never answered, so it is not known any more, whatever it did before.
    public func finish(_ destination: String, decision: Decision, answered: Bool) {
        let now = clock.now()
        state.withLock { state in
            if decision == .admitted {
                let current = state.inFlight[destination, default: 1] - 1
                state.inFlight[destination] = current > 0 ? current : nil
                state.total = max(0, state.total - 1)
            }
            if answered {
                if state.lastAnswer[destination] == nil, state.lastAnswer.count >= limits.capacity { forgetOldest(&state, now: now) }
                state.lastAnswer[destination] = now
            } else {
                state.lastAnswer[destination] = nil
            }
        }
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
