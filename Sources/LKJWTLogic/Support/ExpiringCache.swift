import FoundationEssentials
import Synchronization

/// A per-process cache shared by the worker threads. Concurrent lookups of one key collapse into
/// one: the first caller computes while the others wait on that key's lock, then read its result.
final class ExpiringCache<Value: Sendable>: Sendable {
    private final class Slot: Sendable {
        let entry = Mutex<(value: Value, expiry: Date)?>(nil)
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
    func value(for key: String, compute: () -> (value: Value, lifetime: Duration?)) -> Value {
        let slot = self.slot(for: key)
        return slot.entry.withLock { entry in
            let now = clock.now()
            if let cached = entry, cached.expiry > now { return cached.value }
            let (value, lifetime) = compute()
            if let lifetime, lifetime > .zero {
                entry = (value, now.addingTimeInterval(Double(lifetime.milliseconds) / 1000))
            } else {
                entry = nil
            }
            return value
        }
    }

    /// The unexpired value, without computing anything.
    func peek(_ key: String) -> Value? {
        let slot = slots.withLock { $0[key] }
        let now = clock.now()
        return slot?.entry.withLock { entry in entry.flatMap { $0.expiry > now ? $0.value : nil } }
    }

    func remove(_ key: String) {
        let slot = slots.withLock { $0[key] }
        slot?.entry.withLock { $0 = nil }
    }

    private func slot(for key: String) -> Slot {
        slots.withLock { slots in
            if let existing = slots[key] { return existing }
            if slots.count >= capacity { evict(&slots) }
            let slot = Slot()
            slots[key] = slot
            return slot
        }
    }

    /// Drops expired and empty entries; if that frees nothing, forgets everything not in use.
    private func evict(_ slots: inout [String: Slot]) {
        let now = clock.now()
        let stale = slots.filter { _, slot in
            slot.entry.withLockIfAvailable { entry in entry.map { $0.expiry <= now } ?? true } ?? false
        }
        if stale.isEmpty {
            slots = slots.filter { _, slot in slot.entry.withLockIfAvailable { _ in false } ?? true }
        } else {
            for key in stale.keys { slots[key] = nil }
        }
    }
}
