/// The `video` claim of a LiveKit token, with members in the order LiveKit's own SDKs write them.
public struct VideoGrant: Sendable, Equatable {
    public let members: [JSONMember]

    /// What a call member gets: join and publish in one room. Never `roomCreate` (it would allow deleting rooms).
    public static func join(room: String) -> VideoGrant {
        VideoGrant(members: [
            JSONMember("roomJoin", .bool(true)),
            JSONMember("room", .string(room)),
            JSONMember("canPublish", .bool(true)),
            JSONMember("canSubscribe", .bool(true)),
            JSONMember("canUpdateOwnMetadata", .bool(true)),
        ])
    }

    /// Server API token for `CreateRoom`.
    static let roomCreate = VideoGrant(members: [JSONMember("roomCreate", .bool(true))])

    /// Server API token for `GetParticipant` in one room.
    static func roomAdmin(room: String) -> VideoGrant {
        VideoGrant(members: [JSONMember("roomAdmin", .bool(true)), JSONMember("room", .string(room))])
    }
}
