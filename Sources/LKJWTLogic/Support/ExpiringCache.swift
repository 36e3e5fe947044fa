import FoundationEssentials
import Synchronization

/// A per-process cache shared by the worker threads. Concurrent lookups of one key collapse into
/// one: the first caller computes, outside any lock, while the others wait for its result, each
/// only until its own deadline (contract §13.2), so a lookup that hangs holds no one but its caller.
final class ExpiringCache<Value: Sendable>: Sendable {
    /// A computation in progress, which later callers of the same key wait for.
    private final class Flight: Sendable {
        let result = Mutex<Value?>(nil)
        let done = MonotonicSignal()
    }

    private enum Role {
        case cached(Value)
        case wait(Flight)
        case compute(Flight)
    }

    private struct Slot {
        var entry: (value: Value, expiry: Date)?
        var flight: Flight?
    }

    private let slots = Mutex<[String: Slot]>([:])
    private let clock: any WallClock
    /// Distinct keys kept at most; clients choose server names, so this must not grow without bound.
    private let capacity: Int

    init(clock: any WallClock, capacity: Int = 10_000) {
        self.clock = clock
        self.capacity = capacity
    }

    /// The cached value, or the result of `compute`, kept for the lifetime it returns (nil: not kept).
    /// Waits for another thread's computation of the same key without a time limit: only for callers
    /// whose computations are themselves bounded.
    func value(for key: String, compute: () -> (value: Value, lifetime: Duration?)) -> Value {
        // A computation is bounded by its own timeouts, so "never" here means "as long as it takes".
        value(for: key, deadline: Deadline(after: .seconds(86_400)), compute: compute)!
    }

    /// As above; nil when `deadline` passed while another thread was still computing this key.
    func value(for key: String, deadline: Deadline, compute: () -> (value: Value, lifetime: Duration?)) -> Value? {
        let role = slots.withLock { slots -> Role in
            let now = clock.now()
            if let cached = slots[key]?.entry, cached.expiry > now { return .cached(cached.value) }
            if let flight = slots[key]?.flight { return .wait(flight) }
            if slots[key] == nil, slots.count >= capacity { evict(&slots, now: now) }
            let flight = Flight()
            slots[key, default: Slot()].flight = flight
            return .compute(flight)
        }
        switch role {
        case .cached(let value):
            return value
        case .wait(let flight):
            guard flight.done.wait(until: deadline) else { return nil }
            return flight.result.withLock { $0 }
        case .compute(let flight):
            let (value, lifetime) = compute()
            let now = clock.now()
            slots.withLock { slots in
                var slot = slots[key] ?? Slot()
                if let lifetime, lifetime > .zero {
                    slot.entry = (value, now.addingTimeInterval(Double(lifetime.milliseconds) / 1000))
                } else {
                    slot.entry = nil
                }
                slot.flight = nil
                slots[key] = slot
            }
            flight.result.withLock { $0 = value }
            flight.done.open()
            return value
        }
    }

    /// The unexpired value, without computing anything.
    func peek(_ key: String) -> Value? {
        let now = clock.now()
        return slots.withLock { slots in slots[key]?.entry.flatMap { $0.expiry > now ? $0.value : nil } }
    }

    func remove(_ key: String) {
        slots.withLock { slots in
            slots[key]?.entry = nil
            if slots[key]?.flight == nil { slots[key] = nil }
        }
    }

    /// Drops expired entries; if that frees nothing, forgets every finished entry (computations in
    /// progress stay, their waiters need them).
    private func evict(_ slots: inout [String: Slot], now: Date) {
        let before = slots.count
        slots = slots.filter { _, slot in slot.flight != nil || (slot.entry.map { $0.expiry > now } ?? false) }
        if slots.count == before {
            slots = slots.filter { _, slot in slot.flight != nil }
        }
    }
}
