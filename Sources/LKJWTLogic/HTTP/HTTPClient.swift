/// Every outbound HTTP call of the logic goes through this, so behaviour is testable without sockets.
public protocol HTTPClient: Sendable {
    func send(_ request: OutboundRequest) throws(OutboundError) -> OutboundResponse
    /// Why this client could not send requests to `url` (its form: scheme, host, port…), or nil when
    /// it can; for URLs taken from remote documents before they are used.
    func unusableURL(_ url: String) -> String?
}

public struct OutboundRequest: Sendable {
    public var method = HTTPMethod.get
    public var url: String
    public var headers: HTTPHeaders = []
    public var body: [UInt8] = []
    /// From connecting to the last byte of the answer.
    public var timeout = Duration.seconds(10)
    public var connectTimeout = Duration.seconds(5)
    /// Open the TCP connection here instead of the URL's host (Matrix discovery: the URL keeps the
    /// name the certificate is checked for).
    public var connectAddress: (host: String, port: Int)?
    /// 0 means redirects are answers, not followed.
    public var maximumRedirects = 0
    /// Redirects to `http` are refused (well-known fetches, §13.1).
    public var redirectsOnlyToHTTPS = false
    /// Longer answers fail with `.responseTooLarge`.
    public var maximumResponseSize = 1 << 20
    /// Checked on every address a connection of this request (redirects included) would go to,
    /// after name resolution; nil for destinations the operator configured (§13.1).
    public var addressPolicy: OutboundAddressPolicy?
    /// The Matrix server name on whose say the request is made, for the log of a blocked address.
    public var serverName = ""
}

public struct OutboundResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPStatus, headers: HTTPHeaders = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A call that produced no usable HTTP answer.
public struct OutboundError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No HTTP response at all: DNS, TCP, TLS, a blocked address (§13.1), or a timeout before
        /// the status line.
        case transport
        /// A response started but went wrong: timeout while reading, body over the limit.
        case timeout
        case responseTooLarge
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
