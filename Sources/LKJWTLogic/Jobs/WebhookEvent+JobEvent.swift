extension WebhookEvent {
    /// The FSM event of §7.2; nil for events that do not concern jobs.
    public var jobEvent: JobEvent? {
        switch event {
        case "participant_joined":
            return .participantConnected
        case "participant_left", "participant_connection_aborted":
            return disconnectReason?.isClientInitiated == true ? .participantDisconnectedIntentionally : .participantConnectionAborted
        default:
            return nil
        }
    }
}
