import Testing

@testable import LKJWTLogic

/// What nginx, Caddy and CGI servers really send (FASTCGI-NOTES.md) → the request the logic routes.
struct RequestCGITests {
    @Test(arguments: [
        // nginx at a plain location: whole path in SCRIPT_NAME, no PATH_INFO.
        (["SCRIPT_NAME": "/a/sfu/get", "REQUEST_URI": "/a/sfu/get?x=1"], "/a/sfu/get"),
        // nginx with fastcgi_split_path_info.
        (["SCRIPT_NAME": "/livekit/jwt", "PATH_INFO": "/get_token", "REQUEST_URI": "/livekit/jwt/get_token"], "/livekit/jwt/get_token"),
        // Caddy handle_path: empty SCRIPT_NAME, stripped path in PATH_INFO.
        (["SCRIPT_NAME": "", "PATH_INFO": "/sfu/get", "REQUEST_URI": "/lk/sfu/get?x=1"], "/sfu/get"),
        // Neither: the decoded path of REQUEST_URI.
        (["REQUEST_URI": "/pre%66ix/get%5Ftoken?a=%2F"], "/prefix/get_token"),
        // Found by the cgi fuzz target: a sign is not a hex digit ("%+f" was decoded as 0x0F).
        (["REQUEST_URI": "/healthz%+f%-0%2"], "/healthz%+f%-0%2"),
        ([:], ""),
    ])
    func path(parameters: [String: String], expected: String) {
        #expect(Request(cgiParameters: parameters, body: .bytes([])).path == expected)
    }

    @Test func headersMethodAndRemoteAddress() {
        let request = Request(cgiParameters: [
            "REQUEST_METHOD": "POST", "HTTP_ORIGIN": "https://call.example.org", "HTTP_AUTHORIZATION": "token",
            "HTTP_X_CSRF_TOKEN": "x", "CONTENT_TYPE": "application/json", "REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "5555",
        ], body: .bytes([1]))
        #expect(request.method == "POST")
        #expect(request.headers["Origin"] == "https://call.example.org")
        #expect(request.headers["authorization"] == "token")
        #expect(request.headers["x-csrf-token"] == "x")
        #expect(request.headers.count == 3)
        #expect(request.remoteAddress == "192.0.2.1:5555")
        #expect(Request(cgiParameters: ["REMOTE_ADDR": "::1"], body: .bytes([])).remoteAddress == "::1")
    }

    @Test(arguments: [
        ("12", 12), ("0", 0), ("65536", 65536), ("65537", nil), ("", 65537), ("-1", 65537), ("abc", 65537),
    ] as [(String, Int?)])
    func bodyReadLimit(contentLength: String, expected: Int?) {
        #expect(Request.bodyReadLimit(contentLength: contentLength) == expected)
    }

    @Test func absentContentLengthReadsToTheEnd() {
        #expect(Request.bodyReadLimit(contentLength: nil) == Request.maximumBodySize + 1)
    }
}
