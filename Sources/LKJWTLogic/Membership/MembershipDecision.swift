/// The sweep's decisions as pure functions (AS-MODE.md B4, notes §4.3): what the homeserver's answers
/// say about a room, and what that means for one tracked participant.
public enum MembershipDecision {
    /// A Matrix room as the sweep sees it.
    public enum Room: Sendable, Equatable {
        /// The room's joined members.
        case joined(Set<String>)
        /// Our homeserver itself is no longer in the room: nothing legitimate is left in its call.
        case serverLeft
        /// The homeserver could not or would not say: nobody is removed (fail open, as upstream: a
        /// homeserver outage must not end every call).
        case unknown(Unknown)
    }

    public enum Unknown: Sendable, Equatable {
        /// The homeserver failed or answered something unexpected.
        case homeserverError(String)
        /// 403 although our server is in the room: the registration's users namespace covers no joined
        /// member, which is an operator's mistake worth an error in the log.
        case notAllowedToLook
    }

    /// What to do with one participant.
    public enum Action: Sendable, Equatable {
        case none
        /// Record this removal as pending and ask the SFU for it.
        case remove(TrackedParticipant.Removal)
        /// The user is a member again: forget a removal not yet confirmed.
        case cancelRemoval
    }

    /// `joined_members`, confirmed by `is_joined` on a 403 (asked only then, through `ownServer`).
    public static func room(_ answer: JoinedMembersAnswer, ownServer: () -> ServerJoinedAnswer) -> Room {
        switch answer {
        case .members(let members):
            return .joined(members)
        case .failed(let reason):
            return .unknown(.homeserverError(reason))
        case .forbidden:
            switch ownServer() {
            case .notJoined: return .serverLeft
            case .joined: return .unknown(.notAllowedToLook)
            case .failed(let reason): return .unknown(.homeserverError("joined_members answered 403 and is_joined failed: \(reason)"))
            }
        }
    }

    /// Only participants on the SFU, or with a removal still owed, are removed; one who never joined
    /// the call is left alone (the check when it joins decides then). A removal decided earlier is
    /// retried whatever the homeserver says now, unless the user is a member again.
    public static func action(for participant: TrackedParticipant, in room: Room) -> Action {
        let onSFU = participant.connected || participant.pendingRemoval != nil
        switch room {
        case .joined(let members):
            if members.contains(participant.matrixUserID) {
                return participant.pendingRemoval == nil ? .none : .cancelRemoval
            }
            return onSFU ? .remove(.participant) : .none
        case .serverLeft:
            return onSFU ? .remove(.room) : .none
        case .unknown:
            return participant.pendingRemoval.map { .remove($0) } ?? .none
        }
    }

    /// Why, for the operator's log.
    public static func reason(_ removal: TrackedParticipant.Removal) -> String {
        switch removal {
        case .participant: "the user is no longer joined to the Matrix room (left, kicked or banned)"
        case .room: "this homeserver is no longer in the Matrix room"
        }
    }
}
