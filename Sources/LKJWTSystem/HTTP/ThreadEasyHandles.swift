import Glibc
import LKJWTLogic
import Synchronization

/// The easy handles of one client, owned per thread: each thread gets one handle per kind (under an
/// address policy or not) on its first request of that kind, keeps it, and cleans it up when it ends.
/// A thread only ever touches its own handles, so taking one takes no lock: a pool shared by the
/// workers cost a token 2.7 % of its CPU in its lock (a PI futex on Linux, contended twice a request).
final class ThreadEasyHandles: @unchecked Sendable {
    /// One thread's handles; the thread's value of `key` holds it (retained). Only its thread touches
    /// the handles, but for the client's end, when no request of the client can run any more.
    final class Slot: @unchecked Sendable {
        let registry: Registry
        var policed: EasyHandle?
        var unpoliced: EasyHandle?

        init(registry: Registry) {
            self.registry = registry
        }
    }

    /// Every thread's slot, so that the client's end can clean up the handles of threads still
    /// running (the key's destructor only runs at thread exit, and not at all once the key is
    /// deleted). Locked only at a thread's first request and at its end.
    final class Registry: Sendable {
        let slots = Mutex<[ObjectIdentifier: Slot]>([:])
    }

    private let tls: TLSSettings
    private let registry = Registry()
    private var key = pthread_key_t()
    /// Without a key (the process has used up its thread-specific keys), or when a thread's value
    /// cannot be stored, every request gets a handle of its own and so a new connection.
    private let hasKey: Bool

    init(tls: TLSSettings) {
        self.tls = tls
        hasKey = pthread_key_create(&key) { value in
            // The thread ends: its handles (and their connections) go with it.
            guard let value else { return }
            let slot = Unmanaged<Slot>.fromOpaque(value).takeRetainedValue()
            _ = slot.registry.slots.withLock { $0.removeValue(forKey: ObjectIdentifier(slot)) }
        } == 0
    }

    deinit {
        if hasKey { pthread_key_delete(key) }
        let slots = registry.slots.withLock { slots in
            defer { slots = [:] }
            return slots
        }
        // No request of this client runs any more; the slots themselves stay with their threads.
        for slot in slots.values {
            slot.policed = nil
            slot.unpoliced = nil
        }
    }

    /// The calling thread's handle for requests under an address policy (`policed`) or not.
    func handle(policed: Bool) -> EasyHandle {
        guard let slot = slot() else { return EasyHandle(tls: tls, policed: policed) }
        let kept = policed ? slot.policed : slot.unpoliced
        if let kept, !kept.isPerforming { return kept }
        // A request made while this thread's handle is in the middle of another (nothing does that
        // today) gets a handle of its own rather than the busy one.
        if kept != nil { return EasyHandle(tls: tls, policed: policed) }
        let made = EasyHandle(tls: tls, policed: policed)
        if policed { slot.policed = made } else { slot.unpoliced = made }
        return made
    }

    private func slot() -> Slot? {
        guard hasKey else { return nil }
        if let value = pthread_getspecific(key) { return Unmanaged<Slot>.fromOpaque(value).takeUnretainedValue() }
        let slot = Slot(registry: registry)
        let value = Unmanaged.passRetained(slot)
        guard pthread_setspecific(key, value.toOpaque()) == 0 else {
            value.release()
            return nil
        }
        registry.slots.withLock { $0[ObjectIdentifier(slot)] = slot }
        return slot
    }
}
