/// The monitor asks our homeserver through the application-service client (as_token, only
/// `LIVEKIT_HS_SERVER_NAME`'s API, B2.8).
extension ApplicationServiceClient: RoomMembershipSource {
    /// `GET …/v3/rooms/{roomId}/joined_members` (AS-MODE-NOTES §4.3): the raw answer, which
    /// `JoinedMembersAnswer` reads. Large rooms answer with megabytes.
    func joinedMembers(roomID: String, baseURL: String) -> Result<OutboundResponse, Failure> {
        send("GET", Self.join(baseURL, "/_matrix/client/v3/rooms/\(Self.segment(roomID))/joined_members"), timeout: .seconds(10),
             maximumResponseSize: 16 << 20)
    }

    public func joinedMembers(of room: String) -> JoinedMembersAnswer {
        let answer = baseURL().flatMap { joinedMembers(roomID: room, baseURL: $0) }
        switch answer {
        case .success(let response): return JoinedMembersAnswer(status: response.status, body: response.body)
        case .failure(let failure): return .failed(failure.reason)
        }
    }

    public func isOwnServerJoined(_ room: String) -> ServerJoinedAnswer {
        switch baseURL().flatMap({ isJoined(roomID: room, .server(serverName), baseURL: $0) }) {
        case .success(true): .joined
        case .success(false): .notJoined
        case .failure(let failure): .failed(failure.reason)
        }
    }
}
