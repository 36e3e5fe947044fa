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
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + body.count)
        bytes += "Status: ".utf8
        bytes += status.line.utf8
        bytes += "\r\n".utf8
        for header in headers {
            bytes += header.name.utf8
            bytes += ": ".utf8
            bytes += header.value.utf8
            bytes += "\r\n".utf8
        }
        bytes += "\r\n".utf8
        bytes += body
        return bytes
    }
}
