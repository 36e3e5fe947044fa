import Testing

@testable import LKJWTLogic

struct RoomServiceClientTests {
    static let alias = "O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"
    static let identity = "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU"

    /// Contract §6.5 bytes.
    @Test func createRoomBodyMatchesTheContract() {
        let expected: [UInt8] = [0x0a, 0x2b] + Array(Self.alias.utf8) + [0x10, 0xac, 0x02, 0x50, 0x14]
        #expect(RoomServiceClient.createRoomBody(alias: Self.alias) == expected)
    }

    /// Contract §6.6 bytes.
    @Test func participantIdentityBodyMatchesTheContract() {
        let expected: [UInt8] = [0x0a, 0x2b] + Array(Self.alias.utf8) + [0x12, 0x2b] + Array(Self.identity.utf8)
        #expect(RoomServiceClient.participantIdentityBody(room: Self.alias, identity: Self.identity) == expected)
    }

    @Test(arguments: [
        ("ws://127.0.0.1:7880", "http://127.0.0.1:7880"),
        ("wss://sfu.example.com", "https://sfu.example.com"),
        ("wss://host/livekit/sfu/", "https://host/livekit/sfu"),
        ("sfu.example.com:7880", "http://sfu.example.com:7880"),
        ("https://sfu.example.com//", "https://sfu.example.com"),
        ("WSS://x", "WSS://x"),
    ])
    func twirpBaseURL(liveKitURL: String, expected: String) {
        #expect(RoomServiceClient.twirpBaseURL(liveKitURL: liveKitURL) == expected)
    }

    @Test func createRoomSendsProtobufWithARoomCreateToken() throws {
        var room = ProtobufWriter()
        room.string(1, "RM_123")
        room.uint(5, 1_700_000_000)
        let reply = room.bytes
        let http = ScriptedHTTPClient { _ throws(OutboundError) in OutboundResponse(status: 200, body: reply) }
        let client = RoomServiceClient(liveKitURL: "wss://sfu.example.com/", apiKey: "devkey", apiSecret: "devsecret", http: http, clock: FixedClock())
        let created = try client.createRoom(alias: Self.alias)
        #expect(created == RoomServiceClient.CreatedRoom(sid: "RM_123", creationTime: 1_700_000_000))
        let request = try #require(http.requests.first)
        #expect(request.url == "https://sfu.example.com/twirp/livekit.RoomService/CreateRoom")
        #expect(request.headers["content-type"] == "application/protobuf")
        #expect(request.body == RoomServiceClient.createRoomBody(alias: Self.alias))
        let expectedToken = try AccessToken.server(apiKey: "devkey", grant: .roomCreate, issuedAt: FixedClock().now()).signed(secret: "devsecret")
        #expect(request.headers["authorization"] == "Bearer \(expectedToken)")
    }

    @Test func createRoomFailsOnAnythingButHTTP200() {
        for status in [201, 301, 404, 500] as [HTTPStatus] {
            let http = ScriptedHTTPClient { _ throws(OutboundError) in .json(status, #"{"code":"internal","msg":"x"}"#) }
            let client = RoomServiceClient(liveKitURL: "ws://sfu", apiKey: "k", apiSecret: "s", http: http, clock: FixedClock())
            #expect(throws: RoomServiceClient.CallError.self) { try client.createRoom(alias: "a") }
        }
        let down = ScriptedHTTPClient { _ throws(OutboundError) in throw OutboundError(.transport, "Couldn't connect to server") }
        let client = RoomServiceClient(liveKitURL: "ws://sfu", apiKey: "k", apiSecret: "s", http: down, clock: FixedClock())
        #expect(throws: RoomServiceClient.CallError.self) { try client.createRoom(alias: "a") }
    }

    @Test func undecodableSuccessIsStillSuccess() throws {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in OutboundResponse(status: 200, body: [0xFF, 0xFF]) }
        let client = RoomServiceClient(liveKitURL: "ws://sfu", apiKey: "k", apiSecret: "s", http: http, clock: FixedClock())
        #expect(try client.createRoom(alias: "a") == RoomServiceClient.CreatedRoom())
    }

    @Test func participantPresenceClassification() {
        func presence(_ response: OutboundResponse?) -> ParticipantPresence {
            let http = ScriptedHTTPClient { _ throws(OutboundError) in
                guard let response else { throw OutboundError(.transport, "timeout") }
                return response
            }
            return RoomServiceClient(liveKitURL: "ws://sfu", apiKey: "k", apiSecret: "s", http: http, clock: FixedClock())
                .participantPresence(room: "r", identity: "i")
        }
        #expect(presence(OutboundResponse(status: 200)) == .present)
        #expect(presence(.json(404, #"{"code":"not_found","msg":"participant not found","meta":{}}"#)) == .absent)
        if case .unknown = presence(.json(404, "404 page not found")) {} else { Issue.record("a bare 404 is not not_found") }
        if case .unknown = presence(.json(404, #"{"code":"not_found","msg":"x","extra":1}"#)) {} else { Issue.record("extra members make an intermediary error") }
        if case .unknown = presence(.json(500, #"{"code":"internal","msg":"x"}"#)) {} else { Issue.record("other codes are unknown") }
        if case .unknown = presence(nil) {} else { Issue.record("transport errors are unknown") }
    }

    @Test func protobufReaderRejectsTruncatedMessages() {
        #expect(ProtobufReader.fields([0x0a, 0x05, 0x41]) == nil)
        #expect(ProtobufReader.fields([0x08]) == nil)
        #expect(ProtobufReader.fields([])?.isEmpty == true)
    }
}
