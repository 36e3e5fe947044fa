extension Request {
    /// A request from CGI/FastCGI parameters (contract §3.1); the same rules for both transports.
    public init(cgiParameters parameters: [String: String], body: Body) {
        var headers = HTTPHeaders()
        for (name, value) in parameters where name.hasPrefix("HTTP_") {
            // Mapped as bytes (ASCII letters lowered, `_` to `-`): as Characters this was the costliest
            // step of a `/healthz`. Header names are ASCII tokens; other bytes stay as they are.
            let headerName = name.utf8.dropFirst(5).map { byte -> UInt8 in
                switch byte {
                case UInt8(ascii: "_"): UInt8(ascii: "-")
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte + 32
                default: byte
                }
            }
            headers.append(name: String(decoding: headerName, as: UTF8.self), value: value)
        }
        var remoteAddress = parameters["REMOTE_ADDR"] ?? ""
        if let port = parameters["REMOTE_PORT"], !port.isEmpty { remoteAddress += ":\(port)" }
        self.init(
            method: parameters["REQUEST_METHOD"].map { HTTPMethod(rawValue: $0) } ?? .get, path: Request.path(cgiParameters: parameters), headers: headers, body: body,
            remoteAddress: remoteAddress)
    }

    /// `SCRIPT_NAME + PATH_INFO` (decoded by the web server), else the decoded path of `REQUEST_URI`.
    static func path(cgiParameters parameters: [String: String]) -> String {
        let scriptName = parameters["SCRIPT_NAME"] ?? ""
        let pathInfo = parameters["PATH_INFO"] ?? ""
        if !scriptName.isEmpty || !pathInfo.isEmpty { return scriptName + pathInfo }
        let uri = parameters["REQUEST_URI"] ?? ""
        return percentDecoded(String(uri.prefix { $0 != "?" }))
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            // Two hex digits exactly: UInt8(_:radix:) alone would also take a sign, "%+f" as 0x0F.
            if byte == UInt8(ascii: "%"), input.count >= 2, input.prefix(2).allSatisfy({ $0 < 0x80 && Character(Unicode.Scalar($0)).isHexDigit }),
                let value = UInt8(String(decoding: input.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                input = input.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// How many body bytes to ask for: the declared length when there is one, else read to the end
    /// (nginx unbuffered sends none, Caddy sends -1 for chunked bodies) and one byte more than allowed,
    /// to notice a body that is too large. nil: the declared length is too large, read nothing.
    /// The declared length is the client's number: any run of digits is a length, saturating (§13.5).
    public static func bodyReadLimit(contentLength: String?) -> Int? {
        if let text = contentLength, let declared = Int64(saturatingDigits: Substring(text)) {
            return declared > Int64(maximumBodySize) ? nil : Int(declared)
        }
        return maximumBodySize + 1
    }
}
