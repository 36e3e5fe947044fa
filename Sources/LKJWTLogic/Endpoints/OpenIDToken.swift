/// The `openid_token` member clients copy from their homeserver's `/openid/request_token` answer.
struct OpenIDToken: Sendable {
    static let schema: Set<String> = ["access_token", "token_type", "matrix_server_name", "expires_in"]

    /// Never logged.
    var accessToken: String
    var matrixServerName: String

    init(_ reader: JSONObjectReader) throws(JSONObjectReader.Failure) {
        accessToken = try reader.string("access_token")
        matrixServerName = try reader.string("matrix_server_name")
        // Ignored, but their types are still checked like every other member.
        _ = try reader.string("token_type")
        _ = try reader.integer("expires_in")
    }

    var isIncomplete: Bool { accessToken.isEmpty || matrixServerName.isEmpty }
}
