/// One HTTP request as the web server forwarded it, independent of how it arrived (FastCGI or CGI).
public struct Request: Sendable {
    /// The body as far as it was read: the adapter stops reading past `Request.maximumBodySize`.
    public enum Body: Sendable, Equatable {
        case bytes([UInt8])
        case tooLarge
        /// It did not arrive completely within `Request.bodyTimeout` of the request's start (§13.2).
        case timedOut
    }

    /// A whole body must arrive within this of the request's start, so a client that stops
    /// sending cannot hold a thread (contract §13.2).
    public static let bodyTimeout: Duration = .seconds(10)

    /// Bodies above this are not read (contract §3.1).
    public static let maximumBodySize = 64 * 1024

    public var method: HTTPMethod
    /// `SCRIPT_NAME + PATH_INFO`, or the decoded path of `REQUEST_URI` when both are empty.
    public var path: String
    /// Header names in lower case, as in `HTTP_X_Y` → `x-y`.
    public var headers: HTTPHeaders
    public var body: Body
    /// `REMOTE_ADDR`, with `:REMOTE_PORT` when the web server sent it.
    public var remoteAddress: String

    public init(method: HTTPMethod, path: String, headers: HTTPHeaders = [], body: Body = .bytes([]), remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }
}
