import Glibc
import Logging
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

/// One easy handle serves request after request: each must go out exactly as it asks, whatever the
/// requests before it on the same handle set. Each sequence starts with a request that opens the
/// connection, so the requests after it reuse that connection and run on the handle as the last
/// request left it (a handle is set up afresh only after a failure or a new connection).
struct EasyHandleTests {
    static let logger = Logger(label: "test")

    static func request(
        _ url: String, method: HTTPMethod = .get, headers: HTTPHeaders = [], body: String = "", timeout: Duration = .seconds(10),
        connectAddress: (host: String, port: Int)? = nil, maximumRedirects: Int = 0, redirectsOnlyToHTTPS: Bool = false,
        maximumResponseSize: Int = 1 << 20, addressPolicy: OutboundAddressPolicy? = nil
    ) -> OutboundRequest {
        OutboundRequest(
            method: method, url: url, headers: headers, body: Array(body.utf8), timeout: timeout, connectAddress: connectAddress,
            maximumRedirects: maximumRedirects, redirectsOnlyToHTTPS: redirectsOnlyToHTTPS, maximumResponseSize: maximumResponseSize,
            addressPolicy: addressPolicy, serverName: "reuse.example")
    }

    static func text(_ response: OutboundResponse) -> String {
        String(decoding: response.body, as: UTF8.self)
    }

    @Test func methodsAndBodiesAreEachRequestsOwn() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let handle = EasyHandle(tls: TLSSettings(), policed: false)
        let url = "http://127.0.0.1:\(server.port)/"
        let requests = [
            Self.request(url),
            Self.request(url, method: .post, headers: ["Content-Type": "application/json"], body: "hello"),
            Self.request(url),
            Self.request(url, method: "OPTIONS"),
            Self.request(url),
            Self.request(url, method: .post),
            Self.request(url, method: "DELETE"),
            Self.request(url, method: .post, body: "second"),
        ]
        for request in requests {
            let response = try handle.perform(request, logger: Self.logger)
            #expect(response.status == 200)
            #expect(Self.text(response) == "ok")
        }
        let received = server.received
        try #require(received.count == requests.count)
        #expect(received.allSatisfy { $0.connection == 1 })
        #expect(received.map(\.method) == ["GET", "POST", "GET", "OPTIONS", "GET", "POST", "DELETE", "POST"])
        #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == ["", "hello", "", "", "", "", "", "second"])
        #expect(received.map { $0.headers["Content-Length"] } == [nil, "5", nil, nil, nil, "0", nil, "6"])
        #expect(received[1].headers["Content-Type"] == "application/json")
        for index in [0, 2, 3, 4, 6] {
            #expect(received[index].headers["Content-Type"] == nil)
        }
        #expect(received.allSatisfy { $0.headers["Expect"] == nil })
    }

    @Test func headersAreEachRequestsOwn() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let handle = EasyHandle(tls: TLSSettings(), policed: false)
        let url = "http://127.0.0.1:\(server.port)/"
        let headers: [HTTPHeaders] = [["X-One": "1"], ["X-One": "1"], ["X-One": "2"], ["X-Two": "2"], [], ["X-One": "1", "X-Two": "2"], ["X-One": "1"]]
        for fields in headers {
            _ = try handle.perform(Self.request(url, headers: fields), logger: Self.logger)
        }
        let received = server.received
        try #require(received.count == headers.count)
        #expect(received.allSatisfy { $0.connection == 1 })
        #expect(received.map { $0.headers["X-One"] } == ["1", "1", "2", nil, nil, "1", "1"])
        #expect(received.map { $0.headers["X-Two"] } == [nil, nil, nil, "2", nil, "2", nil])
    }

    @Test func connectToIsEachRequestsOwn() throws {
        let first = try LocalHTTPServer()
        defer { first.stop() }
        let second = try LocalHTTPServer()
        defer { second.stop() }
        let unused = try UnusedPort()
        defer { unused.close() }
        let handle = EasyHandle(tls: TLSSettings(), policed: false)
        // The URL names a port nothing listens on: only CONNECT_TO leads to a server.
        let url = "http://127.0.0.1:\(unused.port)/"
        for server in [first, first, second, second, first] {
            let response = try handle.perform(Self.request(url, connectAddress: ("127.0.0.1", server.port)), logger: Self.logger)
            #expect(Self.text(response) == "ok")
        }
        // Right after a request that reused its connection: without CONNECT_TO it goes to the URL's port.
        let error = try #require(throws: OutboundError.self) {
            try handle.perform(Self.request(url + "direct"), logger: Self.logger)
        }
        #expect(error.kind == .transport)
        let response = try handle.perform(Self.request(url, connectAddress: ("127.0.0.1", second.port)), logger: Self.logger)
        #expect(Self.text(response) == "ok")
        #expect(first.received.map(\.connection) == [1, 1, 1])
        #expect(second.received.map(\.connection) == [1, 1, 1])
        #expect((first.received + second.received).allSatisfy { $0.target == "/" })
    }

    @Test func redirectRulesAreEachRequestsOwn() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let handle = EasyHandle(tls: TLSSettings(), policed: false)
        let url = "http://127.0.0.1:\(server.port)/redirect"
        _ = try handle.perform(Self.request("http://127.0.0.1:\(server.port)/"), logger: Self.logger)
        let followed = try handle.perform(Self.request(url, maximumRedirects: 1), logger: Self.logger)
        #expect(followed.status == 200)
        #expect(Self.text(followed) == "final")
        let answered = try handle.perform(Self.request(url), logger: Self.logger)
        #expect(answered.status == 302)
        #expect(answered.headers["Location"] == "/final")
        #expect(try handle.perform(Self.request(url, redirectsOnlyToHTTPS: true), logger: Self.logger).status == 302)
        let afterHTTPSOnly = try handle.perform(Self.request(url, maximumRedirects: 1), logger: Self.logger)
        #expect(Self.text(afterHTTPSOnly) == "final")
        // The redirect goes to http, which this request forbids.
        #expect(throws: OutboundError.self) {
            try handle.perform(Self.request(url, maximumRedirects: 1, redirectsOnlyToHTTPS: true), logger: Self.logger)
        }
        let again = try handle.perform(Self.request(url, maximumRedirects: 1), logger: Self.logger)
        #expect(Self.text(again) == "final")
        #expect(server.received.map(\.target) == ["/", "/redirect", "/final", "/redirect", "/redirect", "/redirect", "/final", "/redirect", "/redirect", "/final"])
        #expect(server.received.prefix(8).allSatisfy { $0.connection == 1 })
    }

    @Test func sizeLimitsAndTimeoutsAreEachRequestsOwn() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let handle = EasyHandle(tls: TLSSettings(), policed: false)
        let base = "http://127.0.0.1:\(server.port)"
        _ = try handle.perform(Self.request(base + "/"), logger: Self.logger)
        let whole = try handle.perform(Self.request(base + "/size/100", maximumResponseSize: 1000), logger: Self.logger)
        #expect(whole.body.count == 100)
        let tooLarge = try #require(throws: OutboundError.self) {
            try handle.perform(Self.request(base + "/size/100", maximumResponseSize: 10), logger: Self.logger)
        }
        #expect(tooLarge.kind == .responseTooLarge)
        #expect(try handle.perform(Self.request(base + "/size/100"), logger: Self.logger).body.count == 100)
        #expect(try handle.perform(Self.request(base + "/size/100"), logger: Self.logger).body.count == 100)

        let slow = try handle.perform(Self.request(base + "/slow", timeout: .seconds(5)), logger: Self.logger)
        #expect(Self.text(slow) == "slow")
        #expect(throws: OutboundError.self) {
            try handle.perform(Self.request(base + "/slow", timeout: .milliseconds(100)), logger: Self.logger)
        }
        #expect(Self.text(try handle.perform(Self.request(base + "/slow"), logger: Self.logger)) == "slow")
        // The requests before the too large answer and before the timeout reused their connections.
        let received = server.received
        try #require(received.count == 8)
        #expect(received[1].connection == received[0].connection)
        #expect(received[5].connection == received[4].connection)
    }

    @Test func aPolicedHandleChecksEachRequestWithItsOwnPolicy() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let unused = try UnusedPort()
        defer { unused.close() }
        let handle = EasyHandle(tls: TLSSettings(), policed: true)
        let loopback = OutboundAddressPolicy(
            blocklist: OutboundAddressPolicy.defaultBlocklist, allowlist: [try #require(IPRange.parse("127.0.0.1"))])
        let url = "http://127.0.0.1:\(server.port)/"
        for _ in 0..<2 {
            #expect(Self.text(try handle.perform(Self.request(url, addressPolicy: loopback), logger: Self.logger)) == "ok")
        }
        // A new connection, right after a request that reused one: this request's policy decides.
        let blocked = try #require(throws: OutboundError.self) {
            try handle.perform(Self.request("http://127.0.0.1:\(unused.port)/", addressPolicy: .standard), logger: Self.logger)
        }
        #expect(blocked.message == "address 127.0.0.1 is in LIVEKIT_IP_RANGE_BLOCKLIST")
        // And back: the unused port is allowed again, so it is connected to (and refuses).
        let refused = try #require(throws: OutboundError.self) {
            try handle.perform(Self.request("http://127.0.0.1:\(unused.port)/", addressPolicy: loopback), logger: Self.logger)
        }
        #expect(refused.kind == .transport)
        #expect(!refused.message.contains("LIVEKIT_IP_RANGE_BLOCKLIST"))
        #expect(Self.text(try handle.perform(Self.request(url, addressPolicy: loopback), logger: Self.logger)) == "ok")
        #expect(server.received.count == 3)
    }

    @Test func theClientKeepsPolicedAndUncheckedRequestsApart() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let client = CurlHTTPClient(tls: TLSSettings(), logger: Self.logger)
        let loopback = OutboundAddressPolicy(
            blocklist: OutboundAddressPolicy.defaultBlocklist, allowlist: [try #require(IPRange.parse("127.0.0.1"))])
        let url = "http://127.0.0.1:\(server.port)/"
        for policy in [nil, loopback, nil, loopback] {
            #expect(Self.text(try client.send(Self.request(url, addressPolicy: policy))) == "ok")
        }
        // Two handles, each with its own connection.
        #expect(server.received.map(\.connection) == [1, 2, 1, 2])
    }

    @Test(arguments: [
        ("https://matrix.example.org:8448/_matrix/federation/v1/openid/userinfo?access_token=a%3Ab", "matrix.example.org", "8448"),
        ("https://matrix.example.org/_matrix", "matrix.example.org", "443"),
        ("http://matrix.example.org/", "matrix.example.org", "80"),
        ("https://matrix.example.org?query", "matrix.example.org", "443"),
        ("https://matrix.example.org:8448?query", "matrix.example.org", "8448"),
        ("https://matrix.example.org", "matrix.example.org", "443"),
        ("https://[2001:db8::1]:8448/path", "[2001:db8::1]", "8448"),
        ("https://[2001:db8::1]/path", "[2001:db8::1]", "443"),
        ("http://[::1]", "[::1]", "80"),
        ("https://127.0.0.1:8008/", "127.0.0.1", "8008"),
        ("https://host:/", "host", ""),
        ("matrix.example.org:8448/path", "matrix.example.org", "8448"),
        ("", "", "80"),
    ])
    func authorityIsTheURLsHostAndPort(url: String, host: String, port: String) {
        let authority = EasyHandle.authority(of: url)
        #expect(authority.host == host)
        #expect(authority.port == port)
    }
}
