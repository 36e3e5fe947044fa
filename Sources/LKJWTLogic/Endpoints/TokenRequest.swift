/// The body of `POST /get_token` and `POST /delegate_delayed_leave` (contract §3.4, §3.6).
struct TokenRequest: Sendable {
    static let schema: Set<String> = [
        "room_id", "slot_id", "openid_token", "member", "delay_id", "delay_timeout", "delay_cs_api_url",
    ]
    static let memberSchema: Set<String> = ["id", "claimed_user_id", "claimed_device_id"]

    var roomID: String
    var slotID: String
    var openIDToken: OpenIDToken
    var memberID: String
    var claimedUserID: String
    var claimedDeviceID: String
    var delayID: String
    /// Milliseconds; 0 when absent.
    var delayTimeout: Int64

    init(json: JSONValue) throws(JSONObjectReader.Failure) {
        let reader = try JSONObjectReader(json, schema: TokenRequest.schema)
        roomID = try reader.string("room_id")
        slotID = try reader.string("slot_id")
        openIDToken = try OpenIDToken(reader.object("openid_token", schema: OpenIDToken.schema))
        let member = try reader.object("member", schema: TokenRequest.memberSchema)
        memberID = try member.string("id")
        claimedUserID = try member.string("claimed_user_id")
        claimedDeviceID = try member.string("claimed_device_id")
        delayID = try reader.string("delay_id")
        delayTimeout = try reader.integer("delay_timeout") ?? 0
        _ = try reader.string("delay_cs_api_url")
    }

    /// The checks of §3.4 in their order; nil when the request may proceed.
    func tokenValidationFailure() -> MatrixError? {
        if roomID.isEmpty || slotID.isEmpty { return .badJSON(ValidationText.missingRoomOrSlot) }
        if memberID.isEmpty || claimedUserID.isEmpty || claimedDeviceID.isEmpty { return .badJSON(ValidationText.missingMemberFields) }
        if openIDToken.isIncomplete { return .badJSON(ValidationText.missingOpenIDFields) }
        if (!delayID.isEmpty) != (delayTimeout > 0) { return .badJSON(ValidationText.missingDelayFields) }
        return ValidationText.overlongFailure(boundedValues)
    }

    /// The checks of §3.6, which word two texts differently and require the delay fields.
    func delegationValidationFailure() -> MatrixError? {
        if roomID.isEmpty || slotID.isEmpty { return .badJSON(ValidationText.missingRoomOrSlot) }
        if memberID.isEmpty || claimedUserID.isEmpty || claimedDeviceID.isEmpty { return .badJSON(ValidationText.delegationMissingMemberFields) }
        if openIDToken.isIncomplete { return .badJSON(ValidationText.delegationMissingOpenIDFields) }
        if delayID.isEmpty || delayTimeout <= 0 { return .badJSON(ValidationText.missingDelayFields) }
        return ValidationText.overlongFailure(boundedValues)
    }

    /// The strings §13.4 limits to 255 bytes.
    private var boundedValues: [String] {
        [roomID, slotID, memberID, claimedUserID, claimedDeviceID, delayID, openIDToken.matrixServerName]
    }
}
