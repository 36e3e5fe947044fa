/// An error a client sees: it renders itself as the Matrix error JSON `{"errcode":…,"error":…}`.
public protocol ClientFacingError: Error, Sendable {
    var status: HTTPStatus { get }
    var errcode: String { get }
    var message: String { get }
}

extension ClientFacingError {
    /// The body of contract §3.2: `errcode` then `error`, followed by one LF.
    var matrixErrorBody: [UInt8] {
        let object = JSONValue.object([JSONMember("errcode", .string(errcode)), JSONMember("error", .string(message))])
        return object.serializedBytes(terminator: "\n")
    }
}

/// The Matrix errors of contract §3.9.
public struct MatrixError: ClientFacingError, Equatable {
    public let status: HTTPStatus
    public let errcode: String
    public let message: String

    public init(status: HTTPStatus, errcode: String, message: String) {
        self.status = status
        self.errcode = errcode
        self.message = message
    }

    static let notJSON = MatrixError(status: 400, errcode: "M_NOT_JSON", message: "Error reading request")
    public static let tooLarge = MatrixError(status: 413, errcode: "M_TOO_LARGE", message: "Request body too large")
    static let bodyTimedOut = MatrixError(status: 408, errcode: "M_UNKNOWN", message: "Request body timed out")
    static let unauthorized = MatrixError(status: 401, errcode: "M_UNAUTHORIZED", message: "The request could not be authorised.")
    static let unrecognized = MatrixError(status: 404, errcode: "M_UNRECOGNIZED", message: "Unrecognized request")
    static let methodNotAllowed = MatrixError(status: 405, errcode: "M_UNRECOGNIZED", message: "Method not allowed")
    static let internalServerError = MatrixError(status: 500, errcode: "M_UNKNOWN", message: "Internal Server Error")
    static let roomCreationFailed = MatrixError(status: 500, errcode: "M_UNKNOWN", message: "Unable to create room on SFU")
    public static let shuttingDown = MatrixError(status: 503, errcode: "M_UNKNOWN", message: "Service is shutting down")
    static let delegationNotAllowed = MatrixError(status: 400, errcode: "M_BAD_JSON", message: "Delegation of delayed events is only supported for full access users")
    static let delegationForbidden = MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "Delegation of delayed events is only supported for full access users")
    static let csAPIUnresolvable = MatrixError(status: 400, errcode: "M_BAD_JSON", message: "Unable to resolve client-server API")
    /// §13.4: a user or a wildcard-admitted server at its cap of live jobs.
    static let tooManyDelayedLeaveEvents = MatrixError(status: 429, errcode: "M_LIMIT_EXCEEDED", message: "Too many delayed leave events")

    static func badJSON(_ message: String) -> MatrixError {
        MatrixError(status: 400, errcode: "M_BAD_JSON", message: message)
    }
}

extension MatrixError {
    /// A process without a job store (none configured yet) cannot promise to send a leave event.
    static let delegationUnavailable = MatrixError(status: 503, errcode: "M_UNKNOWN", message: "Delegation of delayed events is not available")
}
