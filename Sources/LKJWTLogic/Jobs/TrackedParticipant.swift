/// A participant whose LiveKit token came from an application-service endpoint, watched by the
/// membership monitor (AS-MODE.md B4). Keyed like a job: (LiveKit room alias, LiveKit identity).
public struct TrackedParticipant: Sendable, Equatable {
    /// The SFU action a sweep decided and the SFU has not confirmed yet; retried by every later sweep
    /// until it is (AS-MODE.md B4, unlike upstream: notes §6.17).
    public enum Removal: String, Sendable, Equatable {
        /// RemoveParticipant: the user is no longer joined to the Matrix room.
        case participant
        /// DeleteRoom: our homeserver itself left the Matrix room.
        case room
    }

    /// A token is valid this long after its issue; a participant is kept at least that long, so that a
    /// removed user who comes back with the same token is checked again at once.
    public static let tokenLifetime: Int64 = 3_600_000

    public var matrixRoomID: String
    public var matrixUserID: String
    public var liveKitRoom: String
    public var liveKitIdentity: String
    /// When the newest token for this key was issued (Unix milliseconds).
    public var registeredAt: Int64
    /// On the SFU, as the newest webhook or presence check said.
    public var connected: Bool
    public var pendingRemoval: Removal?

    public init(
        matrixRoomID: String, matrixUserID: String, liveKitRoom: String, liveKitIdentity: String, registeredAt: Int64,
        connected: Bool = false, pendingRemoval: Removal? = nil
    ) {
        self.matrixRoomID = matrixRoomID
        self.matrixUserID = matrixUserID
        self.liveKitRoom = liveKitRoom
        self.liveKitIdentity = liveKitIdentity
        self.registeredAt = registeredAt
        self.connected = connected
        self.pendingRemoval = pendingRemoval
    }

    public var key: JobKey { JobKey(room: liveKitRoom, identity: liveKitIdentity) }

    /// Its newest token has expired: nobody can join with it any more.
    public func tokenExpired(now: Int64) -> Bool {
        registeredAt.saturatingAdding(Self.tokenLifetime) <= now
    }

    /// Nothing left to watch: the token expired, the participant is off the SFU and owes no removal.
    public func canBeForgotten(now: Int64) -> Bool {
        tokenExpired(now: now) && !connected && pendingRemoval == nil
    }
}
