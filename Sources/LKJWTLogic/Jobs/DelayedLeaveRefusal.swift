/// Why a delayed leave event was not taken over; the endpoints say it to the client as a Matrix error.
public enum DelayedLeaveRefusal: Error, Sendable, Equatable {
    /// `delay_timeout` (milliseconds) is not in 1…`JobMachine.maximumDelayTimeout` (§8.8).
    case invalidDelayTimeout(Int64)
    /// Shutdown began (§3.4 step 13).
    case shuttingDown
    /// The owner or the server is at its cap of live jobs (§13.4).
    case tooManyDelayedLeaveEvents
    /// The store failed; the job was not stored.
    case notStored
}
