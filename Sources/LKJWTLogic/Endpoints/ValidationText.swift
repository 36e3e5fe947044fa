/// The validation texts T1–T8 of contract §3.4, byte for byte (clients and tests match on them).
enum ValidationText {
    static let missingRoomOrSlot = "The request body is missing `room_id` or `slot_id`"
    static let missingMemberFields = "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`"
    static let missingOpenIDFields = "The request body `openid_token` is missing a `access_token` or `matrix_server_name`"
    static let missingDelayFields = "The request body is missing `delay_id` or `delay_timeout`"
    static let missingRoom = "Missing room parameter"
    static let missingOpenIDParameters = "Missing OpenID token parameters"
    static let delegationMissingMemberFields = "The request body `member` is missing `id`, `claimed_user_id` or `claimed_device_id`"
    static let delegationMissingOpenIDFields = "The request body `openid_token` is missing `access_token` or `matrix_server_name`"
    /// §13.4, after T1–T8.
    static let valueTooLong = "The request body has a value longer than 255 bytes"

    /// Matrix limits room IDs, user IDs and server names to 255 bytes (§13.4); request strings that
    /// are stored and logged get the same limit.
    static let maximumValueBytes = 255

    /// The §13.4 failure if any of `values` is longer than `maximumValueBytes`.
    static func overlongFailure(_ values: [String]) -> MatrixError? {
        values.contains { $0.utf8.count > maximumValueBytes } ? .badJSON(valueTooLong) : nil
    }
}
