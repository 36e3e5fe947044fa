/// The bodies of the application-service endpoints: MSC4195's flat shape exactly (`member_id`, no
/// `member` object, no `delay_timeout`), read as strictly as the standalone ones (contract §3.3).
struct ApplicationServiceTokenRequest: Sendable {
    enum Kind: Sendable {
        /// `POST /_matrix/client/…/rtc/livekit/get_token`; `server_name` names the SFU's homeserver.
        case client
        /// `POST /_matrix/federation/…/rtc/livekit/get_token`, relayed by a remote homeserver.
        case federation
        /// `POST /_matrix/client/…/rtc/livekit/delegate_delayed_leave`.
        case delegation

        var schema: Set<String> {
            switch self {
            case .client: ["server_name", "url", "room_id", "slot_id", "member_id"]
            case .federation: ["user_id", "url", "room_id", "slot_id", "member_id"]
            case .delegation: ["url", "room_id", "slot_id", "member_id", "delay_id"]
            }
        }

        /// B2.2: one fixed text per endpoint naming all its required members.
        var missingText: String {
            switch self {
            case .client: "The request body is missing `url`, `room_id`, `slot_id` or `member_id`"
            case .federation: "The request body is missing `user_id`, `url`, `room_id`, `slot_id` or `member_id`"
            case .delegation: "The request body is missing `url`, `room_id`, `slot_id`, `member_id` or `delay_id`"
            }
        }
    }

    /// B2.2 (contract §13.4): `url` may be longer than the other strings.
    static let maximumURLBytes = 2048
    static let urlTooLong = "The request body has a value longer than 2048 bytes"

    let kind: Kind
    /// Client only; empty means this homeserver.
    var serverName: String
    /// Federation only.
    var userID: String
    var url: String
    var roomID: String
    var slotID: String
    var memberID: String
    /// Delegation only.
    var delayID: String

    init(_ kind: Kind, json: JSONValue) throws(JSONObjectReader.Failure) {
        let reader = try JSONObjectReader(json, schema: kind.schema)
        self.kind = kind
        serverName = try reader.string("server_name")
        userID = try reader.string("user_id")
        url = try reader.string("url")
        roomID = try reader.string("room_id")
        slotID = try reader.string("slot_id")
        memberID = try reader.string("member_id")
        delayID = try reader.string("delay_id")
    }

    /// Missing or empty required members first, then lengths; nil when the request may proceed.
    func validationFailure() -> MatrixError? {
        var required = [url, roomID, slotID, memberID]
        switch kind {
        case .client: break
        case .federation: required.append(userID)
        case .delegation: required.append(delayID)
        }
        if required.contains(where: \.isEmpty) { return .badJSON(kind.missingText) }
        if url.utf8.count > Self.maximumURLBytes { return .badJSON(Self.urlTooLong) }
        return ValidationText.overlongFailure([serverName, userID, roomID, slotID, memberID, delayID])
    }
}
