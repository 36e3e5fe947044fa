/// The body of the legacy `POST /sfu/get` (contract §3.5).
struct LegacyTokenRequest: Sendable {
    static let schema: Set<String> = ["room", "openid_token", "device_id", "delay_id", "delay_timeout", "delay_cs_api_url"]

    var room: String
    var openIDToken: OpenIDToken
    var deviceID: String
    var delayID: String
    var delayTimeout: Int64

    init(json: JSONValue) throws(JSONObjectReader.Failure) {
        let reader = try JSONObjectReader(json, schema: LegacyTokenRequest.schema)
        room = try reader.string("room")
        openIDToken = try OpenIDToken(reader.object("openid_token", schema: OpenIDToken.schema))
        deviceID = try reader.string("device_id")
        delayID = try reader.string("delay_id")
        delayTimeout = try reader.integer("delay_timeout") ?? 0
        _ = try reader.string("delay_cs_api_url")
    }

    func validationFailure() -> MatrixError? {
        if room.isEmpty { return .badJSON(ValidationText.missingRoom) }
        if openIDToken.isIncomplete { return .badJSON(ValidationText.missingOpenIDParameters) }
        if (!delayID.isEmpty) != (delayTimeout > 0) { return .badJSON(ValidationText.missingDelayFields) }
        // §13.4, the legacy body's strings.
        return ValidationText.overlongFailure([room, deviceID, delayID, openIDToken.matrixServerName])
    }
}
