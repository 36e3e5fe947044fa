import Testing

@testable import LKJWTLogic

struct HTTPTypesTests {
    @Test func headerNamesCompareWithoutCaseAndTheLastFieldWins() {
        let headers: HTTPHeaders = [("Retry-After", "1"), ("X-Other", "x"), ("retry-after", "2")]
        #expect(headers["RETRY-AFTER"] == "2")
        #expect(headers["x-other"] == "x")
        #expect(headers["Retry-Afte"] == nil)
        // Only letters fold: '@' and '`' differ by the case bit too.
        #expect(HTTPHeaders([(name: "a@", value: "1")])["A`"] == nil)
        #expect(headers.map(\.name) == ["Retry-After", "X-Other", "retry-after"], "fields keep their order and spelling")
    }

    @Test func statusesHaveTheirPhraseAndUnknownOnesNone() {
        #expect(HTTPStatus(413).line == "413 Content Too Large")
        #expect(HTTPStatus(429).reasonPhrase == "Too Many Requests")
        #expect(HTTPStatus(418).reasonPhrase.isEmpty)
        #expect(HTTPStatus(599).line == "599")
        #expect("\(HTTPStatus(503))" == "503", "logs and error texts show the bare number")
    }

    @Test func methodsAreCaseSensitive() {
        #expect(HTTPMethod(rawValue: "GET") == .get)
        #expect(HTTPMethod(rawValue: "get") != .get)
    }
}
