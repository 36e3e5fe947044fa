/// How the homeserver answered a delayed-event action (§9.3).
public enum DelayedEventOutcome: Sendable, Equatable {
    case success
    /// 404: for restart the event is gone, for send it was already sent or cancelled.
    case notFound
    /// Worth retrying; `after` is the server's hint in milliseconds.
    case retry(after: Int64?, reason: String)
}
