/// What the adapter writes back to the web server: a CGI `Status:` line, headers and a body.
public struct Response: Sendable, Equatable {
    public var status: HTTPStatus
    /// In the order they are written.
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPStatus, headers: HTTPHeaders = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Serialised as a CGI response: `Status:` line (contract §3.2), headers, blank line, body.
    public func cgiBytes() -> [UInt8] {
        var head = "Status: \(status.line)\r\n"
        for header in headers {
            head += "\(header.name): \(header.value)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + body
    }
}
