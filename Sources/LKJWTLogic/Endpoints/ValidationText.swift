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
}
