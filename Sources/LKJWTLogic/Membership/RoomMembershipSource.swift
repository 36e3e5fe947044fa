/// What the monitor asks our homeserver about a Matrix room, with the application service's token
/// (AS-MODE.md B4, notes §4.3). Behind a protocol so that the sweep is testable without sockets.
public protocol RoomMembershipSource: Sendable {
    /// `GET /_matrix/client/v3/rooms/<room>/joined_members`.
    func joinedMembers(of room: String) -> JoinedMembersAnswer

    /// MSC4502 `is_joined?server_name=<our server>`: is our homeserver itself still in the room?
    func isOwnServerJoined(_ room: String) -> ServerJoinedAnswer
}

public enum JoinedMembersAnswer: Sendable, Equatable {
    /// 200: the user IDs of the room's joined members, local and remote.
    case members(Set<String>)
    /// 403: the application service may not look. Either our server left the room, or no joined
    /// member matches the registration's users namespace (notes §4.5).
    case forbidden
    /// Any other status, a transport error, an unreadable body.
    case failed(String)
}

public enum ServerJoinedAnswer: Sendable, Equatable {
    case joined
    case notJoined
    case failed(String)
}
