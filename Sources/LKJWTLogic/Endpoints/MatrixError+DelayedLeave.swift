extension MatrixError {
    /// The error a client sees for a delayed leave event the jobs did not take (§8.8, §13.4).
    init(_ refusal: DelayedLeaveRefusal) {
        switch refusal {
        case .invalidDelayTimeout(let milliseconds): self = .badJSON("invalid delay timeout for delayed event job: \(milliseconds)ms")
        case .shuttingDown: self = .shuttingDown
        case .tooManyDelayedLeaveEvents: self = .tooManyDelayedLeaveEvents
        case .notStored: self = .internalServerError
        }
    }
}
