/// Whether a participant is in a room on the SFU, as `GetParticipant` answered (contract §6.6).
public enum ParticipantPresence: Sendable, Equatable {
    case present
    /// The SFU answered Twirp `not_found`: no such room or identity.
    case absent
    /// Anything else; the reason is for the log.
    case unknown(String)
}
