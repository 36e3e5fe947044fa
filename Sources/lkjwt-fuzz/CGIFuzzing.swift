import LKJWTLogic

/// CGI/FastCGI parameters and body reading as the adapters do them (§3.1): `NAME=VALUE` fields up
/// to an empty field, then the body as the web server would stream it.
enum CGIFuzzing {
    static let target = FuzzTarget(
        name: "cgi", summary: "NAME=VALUE fields, an empty field, the body stream; Request(cgiParameters:), bodyReadLimit") { bytes in
            let input = FuzzInput(bytes)
            var parameters: [String: String] = [:]
            var consumed = 0
            for field in input.fields {
                consumed += 1
                if field.isEmpty { break }
                let text = String(decoding: field, as: UTF8.self)
                guard let equals = text.firstIndex(of: "=") else { continue }
                parameters[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            let stream = input.rest(after: consumed)
            let contentLength = parameters["CONTENT_LENGTH"]
            let limit = Request.bodyReadLimit(contentLength: contentLength)
            if let limit {
                invariant((0...Request.maximumBodySize + 1).contains(limit), "read limit \(limit) for Content-Length \(contentLength ?? "nil")")
            }
            // Only plain digits declare a length; a sign ("-1" from Caddy, "-0") means "not declared".
            if let text = contentLength, !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }),
                let declared = Int(text), (0...Request.maximumBodySize).contains(declared)
            {
                invariant(limit == declared, "Content-Length \(declared) read as limit \(String(describing: limit))")
            }
            let request = Request(cgiParameters: parameters, body: readBody(stream, limit: limit))
            // Header names are ASCII tokens (RFC 9110 §5.1), compared without ASCII case: only ASCII is
            // lowered; other bytes stay as they came and match no header the service reads.
            for name in request.headers.map(\.name) {
                invariant(!name.utf8.contains { (65...90).contains($0) || $0 == UInt8(ascii: "_") }, "header name \(name.debugDescription)")
            }
            if (parameters["SCRIPT_NAME"] ?? "").isEmpty, (parameters["PATH_INFO"] ?? "").isEmpty {
                let uri = parameters["REQUEST_URI"] ?? ""
                let expected = percentDecoded(Array(uri.utf8.prefix { $0 != UInt8(ascii: "?") }))
                invariant(request.path == expected, "REQUEST_URI \(uri.debugDescription) decoded as \(request.path.debugDescription)")
            }
            if case .bytes(let body) = request.body {
                invariant(body.count <= Request.maximumBodySize, "a body of \(body.count) bytes was accepted")
            }
            _ = FuzzService.respondChecked(request)
        }

    /// RFC 3986 percent-decoding: `%` and exactly two hex digits, anything else kept as it is.
    static func percentDecoded(_ bytes: [UInt8]) -> String {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// FastCGIServer.readBody without the FastCGI stream: up to the limit, too large past the maximum.
    static func readBody(_ stream: [UInt8], limit: Int?) -> Request.Body {
        guard let limit else { return .tooLarge }
        let body = Array(stream.prefix(limit))
        return body.count > Request.maximumBodySize ? .tooLarge : .bytes(body)
    }
}
