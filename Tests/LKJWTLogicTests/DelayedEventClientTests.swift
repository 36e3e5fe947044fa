import FoundationEssentials
import Testing

@testable import LKJWTLogic

struct DelayedEventClientTests {
    static let now = Date(timeIntervalSince1970: 784_111_777)

    static func classify(_ status: Int, headers: HTTPHeaders = [], body: String = "") -> DelayedEventOutcome {
        DelayedEventClient.classify(OutboundResponse(status: HTTPStatus(status), headers: headers, body: Array(body.utf8)), now: now)
    }

    /// Contract §9.2 example, and the single-segment encoding of DIFF-9.
    @Test func actionURLs() {
        #expect(DelayedEventClient.url(baseURL: "http://127.0.0.1:8008", delayID: "syd_integration_1", action: .send)
            == "http://127.0.0.1:8008/_matrix/client/unstable/org.matrix.msc4140/delayed_events/syd_integration_1/send")
        #expect(DelayedEventClient.url(baseURL: "https://m.example.org/base/", delayID: "a/b c", action: .restart)
            == "https://m.example.org/base/_matrix/client/unstable/org.matrix.msc4140/delayed_events/a%2Fb%20c/restart")
        #expect(DelayedEventClient.encodeSegment(".") == "%2E")
        #expect(DelayedEventClient.encodeSegment("..") == "%2E%2E")
        #expect(DelayedEventClient.encodeSegment("...") == "...")
        #expect(DelayedEventClient.encodeSegment("ä?#") == "%C3%A4%3F%23")
    }

    @Test func requestCarriesAnEmptyObjectAndNoAuthorization() throws {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in OutboundResponse(status: 200) }
        let outcome = DelayedEventClient(http: http, clock: FixedClock()).perform(.restart, delayID: "d", baseURL: "http://hs", serverName: "hs")
        #expect(outcome == .success)
        let request = try #require(http.requests.first)
        #expect(request.method == "POST")
        #expect(request.body == Array("{}".utf8))
        #expect(request.headers["content-type"] == "application/json")
        #expect(request.headers["authorization"] == nil)
    }

    @Test(arguments: [200, 204])
    func successes(status: Int) {
        #expect(Self.classify(status) == .success)
    }

    @Test func notFound() {
        #expect(Self.classify(404) == .notFound)
    }

    @Test(arguments: [500, 502, 503, 599])
    func serverErrorsAreTransient(status: Int) {
        #expect(Self.classify(status) == .retry(after: nil, reason: "CS API temporarily unavailable (http status code \(status))"))
    }

    @Test(arguments: [100, 201, 202, 301, 400, 401, 403, 408, 418, 421, 423, 425])
    func otherStatusesAreTransient(status: Int) {
        #expect(Self.classify(status) == .retry(after: nil, reason: "CS API returned unexpected status: \(status)"))
    }

    @Test(arguments: [
        ([("Retry-After", "3")], "", 3000),
        ([("Retry-After", "+7")], "", 7000),
        ([("Retry-After", "-5")], "", 0),
        ([("Retry-After", "0")], "", 0),
        ([("Retry-After", "Sun, 06 Nov 1994 08:49:47 GMT")], "", 10_000),
        ([("Retry-After", "Sun, 06 Nov 1994 08:49:30 GMT")], "", 0),
        ([], #"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":500}"#, 1000),
        ([], #"{"retry_after_ms":1500}"#, 2000),
        ([("Retry-After", "2")], #"{"retry_after_ms":9000}"#, 2000),
        ([("Retry-After", "soon")], #"{"retry_after_ms":1}"#, 1000),
    ] as [([(name: String, value: String)], String, Int64)])
    func rateLimitHints(headers: [(name: String, value: String)], body: String, milliseconds: Int64) {
        guard case .retry(let after, _) = Self.classify(429, headers: HTTPHeaders(headers), body: body) else {
            Issue.record("429 must be retried")
            return
        }
        #expect(after == milliseconds)
    }

    @Test(arguments: ["", "not json", #"{"retry_after_ms":0}"#, #"{"retry_after_ms":-3}"#, #"{"retry_after_ms":1.5}"#])
    func rateLimitWithoutUsableHintUsesTheDefaultBackoff(body: String) {
        guard case .retry(let after, _) = Self.classify(429, body: body) else {
            Issue.record("429 must be retried")
            return
        }
        #expect(after == nil)
    }

    @Test func transportErrorsAreTransient() {
        let http = ScriptedHTTPClient { _ throws(OutboundError) in throw OutboundError(.transport, "Connection refused") }
        #expect(DelayedEventClient(http: http, clock: FixedClock()).perform(.send, delayID: "d", baseURL: "http://hs", serverName: "hs") == .retry(after: nil, reason: "Connection refused"))
    }

    @Test(arguments: [
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000_500),
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000),
        ("2023-11-14T20:13:20.25-02:00", 1_700_000_000_250),
    ] as [(String, Int64)])
    func rfc3339(text: String, milliseconds: Int64) {
        #expect(RFC3339.parse(text) == milliseconds)
    }

    @Test(arguments: ["", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20+0100"])
    func invalidRFC3339(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test func rfc3339Output() {
        #expect(RFC3339.format(milliseconds: 1_700_000_000_007) == "2023-11-14T22:13:20.007Z")
        #expect(RFC3339.format(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }
}
