/// The errors of the application-service endpoints (AS-MODE.md B2, AS-MODE-NOTES §2.11).
extension MatrixError {
    /// B2.1: the Matrix application-service API's convention for the homeserver's token.
    public static let missingHomeserverToken = MatrixError(status: 401, errcode: "M_UNAUTHORIZED", message: "Missing homeserver access token")
    public static let unrecognisedHomeserverToken = MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "Unrecognised homeserver access token")

    public static let missingRequestAuthorization = MatrixError(status: 401, errcode: "M_UNAUTHORIZED", message: "Missing request authorization")
    public static let missingRequestOrigin = MatrixError(status: 401, errcode: "M_UNAUTHORIZED", message: "Missing request origin")
    public static let urlMismatch = MatrixError(status: 400, errcode: "M_INVALID_PARAM", message: "The request `url` does not match this service's LiveKit URL")
    public static let malformedUserIdentifier = MatrixError(status: 400, errcode: "M_INVALID_PARAM", message: "Malformed user identifier")
    public static let unknownDelayID = MatrixError(status: 400, errcode: "M_INVALID_PARAM", message: "Unknown `delay_id`")
    public static let destinationRejectedURL = MatrixError(status: 400, errcode: "M_INVALID_PARAM", message: "The destination homeserver rejected the specified `url`")
    public static let notRoomMember = MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "The requesting user is not a member of the room")
    public static let targetServerNotJoined = MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "The target server is not joined to the room")
    public static let thisServerNotJoined = MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "This server is not joined to the room")
    public static let userNotOfOrigin = MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "The user_id does not belong to the origin server")
    public static let notRoomMemberAtDestination = MatrixError(
        status: 403, errcode: "M_FORBIDDEN", message: "The requesting user is not a member of the room on the destination homeserver")
    public static let membershipUnverifiable = MatrixError(status: 502, errcode: "M_UNKNOWN", message: "Unable to verify room membership")
    public static let destinationUnreachable = MatrixError(status: 502, errcode: "M_UNKNOWN", message: "Unable to reach the specified homeserver")
    public static let delayedEventLookupFailed = MatrixError(status: 503, errcode: "M_UNKNOWN", message: "Unable to look up the delayed event")
}
