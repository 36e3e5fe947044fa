/// The events of the job state machine (contract §8.3); raw values are the names logs use.
public enum JobEvent: String, Sendable, CaseIterable {
    case participantConnected = "ParticipantConnected"
    case participantLookupSuccessful = "ParticipantLookupSuccessful"
    case participantDisconnectedIntentionally = "ParticipantDisconnectedIntentionally"
    case participantConnectionAborted = "ParticipantConnectionAborted"
    case sfuParticipantGone = "SFUParticipantGone"
    case waitingStateTimedOut = "WaitingStateTimedOut"
    case delayedEventTimedOut = "DelayedEventTimedOut"
    case delayedEventNotFound = "DelayedEventNotFound"
    case csAPIURLNotFound = "CsApiUrlNotFound"
}

/// What became of a job after an event, for the log (§8.4: `from`, `to`, `event`).
public struct JobTransition: Sendable, Equatable {
    public enum Target: String, Sendable {
        case waitingForInitialConnect = "WaitingForInitialConnect"
        case connected = "Connected"
        case disconnected = "Disconnected"
        case aborted = "Aborted"
    }

    public let event: JobEvent
    public let from: DelayedLeaveJob.State
    public let to: Target
}
