/// LiveKit's RoomService over Twirp with protobuf bodies (contract §6.3–§6.6).
public struct RoomServiceClient: Sendable {
    public struct CreatedRoom: Sendable, Equatable {
        var sid: String?
        /// Unix seconds, when the SFU said.
        var creationTime: Int64?
    }

    public struct CallError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public let baseURL: String
    let apiKey: String
    let apiSecret: HMACKey
    let http: any HTTPClient
    let clock: any WallClock

    public init(liveKitURL: String, apiKey: String, apiSecret: String, http: any HTTPClient, clock: any WallClock) {
        self.baseURL = RoomServiceClient.twirpBaseURL(liveKitURL: liveKitURL)
        self.apiKey = apiKey
        self.apiSecret = HMACKey(apiSecret)
        self.http = http
        self.clock = clock
    }

    /// `ws…` becomes `http…`, a bare host gets `http://`, path and port stay (§6.4).
    static func twirpBaseURL(liveKitURL: String) -> String {
        var base = liveKitURL
        if base.hasPrefix("ws") {
            base = "http" + base.dropFirst(2)
        } else if !base.contains("://") {
            base = "http://" + base
        }
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    static func createRoomBody(alias: String) -> [UInt8] {
        var writer = ProtobufWriter()
        writer.string(1, alias)
        writer.uint(2, 300)  // empty_timeout: seconds an empty room is kept
        writer.uint(10, 20)  // departure_timeout: seconds a room is kept after the last member left
        return writer.bytes
    }

    static func participantIdentityBody(room: String, identity: String) -> [UInt8] {
        var writer = ProtobufWriter()
        writer.string(1, room)
        writer.string(2, identity)
        return writer.bytes
    }

    public func createRoom(alias: String) throws(CallError) -> CreatedRoom {
        let response = try call("CreateRoom", body: RoomServiceClient.createRoomBody(alias: alias), grant: .roomCreate, timeout: .seconds(10))
        guard response.status == 200 else {
            throw CallError(message: "CreateRoom answered \(RoomServiceClient.describeFailure(response))")
        }
        var room = CreatedRoom()
        for (field, value) in ProtobufReader.fields(response.body) ?? [] {
            switch (field, value) {
            case (1, .bytes(let bytes)): room.sid = String(decoding: bytes, as: UTF8.self)
            case (5, .varint(let seconds)): room.creationTime = Int64(truncatingIfNeeded: seconds)
            default: break
            }
        }
        return room
    }

    public func participantPresence(room: String, identity: String) -> ParticipantPresence {
        let response: OutboundResponse
        do {
            response = try call(
                "GetParticipant", body: RoomServiceClient.participantIdentityBody(room: room, identity: identity),
                grant: .roomAdmin(room: room), timeout: .seconds(5))
        } catch {
            return .unknown(error.message)
        }
        if response.status == 200 { return .present }
        if RoomServiceClient.twirpErrorCode(response.body) == "not_found" { return .absent }
        return .unknown("GetParticipant answered \(RoomServiceClient.describeFailure(response))")
    }

    /// The SFU's answer to a removal (AS-MODE.md B4): done once it confirmed, also when the participant
    /// or room was already gone (Twirp `not_found`); anything else is retried by a later sweep.
    public enum RemovalOutcome: Sendable, Equatable {
        case confirmed
        case alreadyGone
        case failed(String)
    }

    /// Twirp `RemoveParticipant` (grant `roomAdmin` on that room, body `RoomParticipantIdentity`).
    public func removeParticipant(room: String, identity: String) -> RemovalOutcome {
        removal("RemoveParticipant", body: RoomServiceClient.participantIdentityBody(room: room, identity: identity), grant: .roomAdmin(room: room))
    }

    /// Twirp `DeleteRoom` (grant `roomCreate`, body `DeleteRoomRequest{room}`): disconnects everyone.
    public func deleteRoom(_ room: String) -> RemovalOutcome {
        var writer = ProtobufWriter()
        writer.string(1, room)
        return removal("DeleteRoom", body: writer.bytes, grant: .roomCreate)
    }

    private func removal(_ method: String, body: [UInt8], grant: VideoGrant) -> RemovalOutcome {
        let response: OutboundResponse
        do {
            response = try call(method, body: body, grant: grant, timeout: .seconds(5))
        } catch {
            return .failed(error.message)
        }
        if response.status == 200 { return .confirmed }
        if RoomServiceClient.twirpErrorCode(response.body) == "not_found" { return .alreadyGone }
        return .failed("\(method) answered \(RoomServiceClient.describeFailure(response))")
    }

    private func call(_ method: String, body: [UInt8], grant: VideoGrant, timeout: Duration) throws(CallError) -> OutboundResponse {
        let token: String
        do {
            token = try AccessToken.server(apiKey: apiKey, grant: grant, issuedAt: clock.now()).signed(with: apiSecret)
        } catch {
            throw CallError(message: error.description)
        }
        let request = OutboundRequest(
            method: .post, url: "\(baseURL)/twirp/livekit.RoomService/\(method)",
            headers: [
                ("Content-Type", "application/protobuf"), ("Accept", "application/protobuf"),
                ("Authorization", "Bearer \(token)"), ("Twirp-Version", "v8.1.3"),
            ],
            body: body, timeout: timeout, maximumRedirects: 0, maximumResponseSize: 256 * 1024)
        do {
            return try http.send(request)
        } catch {
            throw CallError(message: "\(method) failed: \(error.message)")
        }
    }

    /// The Twirp error code, only if the body is exactly a Twirp error object; a proxy's bare 404 is not `not_found`.
    static func twirpErrorCode(_ body: [UInt8]) -> String? {
        guard case .object(let members)? = try? JSONParser.parse(body),
            members.allSatisfy({ ["code", "msg", "meta"].contains($0.key) }),
            let code = JSONValue.object(members)["code"]?.stringValue, !code.isEmpty
        else { return nil }
        return code
    }

    static func describeFailure(_ response: OutboundResponse) -> String {
        if let code = twirpErrorCode(response.body) {
            return "HTTP \(response.status) (twirp \(code))"
        }
        return "HTTP \(response.status)"
    }
}
