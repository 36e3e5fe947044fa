/// What a restart or send of a delayed event came to (contract §9.3, AS-MODE.md B3).
public enum DelayedEventOutcome: Sendable, Equatable {
    case success
    /// 404: for restart the event is gone, for send it was already sent or cancelled.
    case notFound
    /// 409 (MSC4140 as merged), only on calls made as the owner: the event was finalised the other
    /// way (a send or restart of a cancelled event). Synapse 1.163 answers 404 instead.
    case conflict
    /// Worth retrying; `after` is the server's hint in milliseconds.
    case retry(after: Int64?, reason: String)
}
