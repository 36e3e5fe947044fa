import Testing

@testable import LKJWTLogic

struct WebhookTests {
    static let now: Int64 = 1_700_000_000
    static let alias = "O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"
    static let identity = "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU"

    let verifier = WebhookVerifier(apiKey: "devkey", apiSecret: "devsecret", clock: FixedClock(Double(WebhookTests.now)))
    let body = Array(#"{"event":"room_started","room":{"name":"r"}}"#.utf8)

    // MARK: Helpers

    static func checksum(_ body: [UInt8]) -> String {
        Base64.standard(Digest.sha256(body), padded: true)
    }

    /// Claims as LiveKit writes them; nil arguments leave the claim out.
    func claims(iss: String = "devkey", exp: Int64? = now + 300, nbf: Int64? = now, sha256: String?? = .none) -> JSONValue {
        var members = [JSONMember("iss", .string(iss))]
        if let exp { members.append(JSONMember("exp", .integer(exp))) }
        if let nbf { members.append(JSONMember("nbf", .integer(nbf))) }
        members.append(JSONMember("iat", .integer(Self.now)))
        switch sha256 {
        case .none: members.append(JSONMember("sha256", .string(Self.checksum(body))))
        case .some(.some(let value)): members.append(JSONMember("sha256", .string(value)))
        case .some(.none): break
        }
        return .object(members)
    }

    func sign(_ claims: JSONValue, secret: String = "devsecret") -> String {
        AccessToken.sign(claims: claims, secret: secret)
    }

    /// A token with arbitrary header and claims text, HS256-signed whatever the header says.
    static func rawToken(header: String, claims: String, secret: String = "devsecret") -> String {
        let input = Base64.url(Array(header.utf8)) + "." + Base64.url(Array(claims.utf8))
        return input + "." + Base64.url(Digest.hmacSHA256(key: Array(secret.utf8), message: Array(input.utf8)))
    }

    /// The rejection, checking that its log text leaks neither the secret nor the token.
    func rejection(_ authorization: String?, body: Request.Body? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> WebhookRejection? {
        switch verifier.verify(authorization: authorization, body: body ?? .bytes(self.body)) {
        case .success:
            Issue.record("accepted", sourceLocation: sourceLocation)
            return nil
        case .failure(let rejection):
            #expect(!rejection.reason.contains("devsecret"), sourceLocation: sourceLocation)
            if let authorization, !authorization.isEmpty {
                #expect(!rejection.reason.contains(authorization), sourceLocation: sourceLocation)
            }
            return rejection
        }
    }

    func accepts(_ authorization: String) -> Bool {
        verifier.verify(authorization: authorization, body: .bytes(body)) == .success(body)
    }

    // MARK: Contract §7.3

    @Test func contractExampleVerifiesAndMeansIntentionalDisconnect() throws {
        let body = Array(#"{"event":"participant_left","room":{"name":"O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"},"participant":{"identity":"J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU","disconnectReason":"CLIENT_INITIATED"},"id":"EV_test","createdAt":"1700000000"}"#.utf8)
        let authorization = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZXZrZXkiLCJleHAiOjE3MDAwMDAzMDAsIm5iZiI6MTcwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwLCJzaGEyNTYiOiIxaHl0RktDbW9tRE8wSGpOZDVyamh4ZDBvcEZZZzF3RjZjd2VzeGdoeTljPSJ9.45uXWhn4X3Ola_OWiTVj7nOVoePTElhO4N7BbBffWS0"
        #expect(Self.checksum(body) == "1hytFKCmomDO0HjNd5rjhxd0opFYg1wF6cwesxghy9c=")
        let claims = try JSONParser.parse(#"{"iss":"devkey","exp":1700000300,"nbf":1700000000,"iat":1700000000,"sha256":"1hytFKCmomDO0HjNd5rjhxd0opFYg1wF6cwesxghy9c="}"#)
        #expect(sign(claims) == authorization)

        #expect(verifier.verify(authorization: authorization, body: .bytes(body)) == .success(body))
        let event = try #require(WebhookEvent.parse(body))
        #expect(event == WebhookEvent(event: "participant_left", room: Self.alias, participantIdentity: Self.identity, disconnectReason: .clientInitiated))
        #expect(event.jobEvent == .participantDisconnectedIntentionally)
    }

    // MARK: Header and token shape

    @Test(arguments: [nil, ""] as [String?])
    func missingAuthorizationIsRejected(_ authorization: String?) {
        #expect(rejection(authorization)?.reason == "missing Authorization header")
    }

    @Test func bearerPrefixIsRejected() {
        // The space makes the header segment invalid base64url: the token is read as LiveKit sends it, bare.
        #expect(rejection("Bearer " + sign(claims()))?.reason == "malformed token: header is not base64url")
    }

    @Test(arguments: [
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.eyJ9.sig",
        WebhookTests.rawToken(header: "not json", claims: #"{"iss":"devkey"}"#),
        WebhookTests.rawToken(header: #"["HS256"]"#, claims: #"{"iss":"devkey"}"#),
        WebhookTests.rawToken(header: #"{"typ":"JWT"}"#, claims: #"{"iss":"devkey"}"#),
        WebhookTests.rawToken(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: "not json"),
        WebhookTests.rawToken(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: #""devkey""#),
        Base64.url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + ".eyJ*.sig",
    ])
    func malformedTokensAreRejected(_ token: String) {
        #expect(rejection(token)?.reason.hasPrefix("malformed token") == true)
    }

    @Test(arguments: [#"{"iss":7}"#, #"{"iss":"devkey","exp":"1700000300"}"#, #"{"iss":"devkey","nbf":true}"#, #"{"iss":"devkey","sha256":[]}"#])
    func wronglyTypedClaimsAreRejected(_ claims: String) {
        #expect(rejection(Self.rawToken(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: claims))?.reason.hasPrefix("malformed token") == true)
    }

    @Test(arguments: ["none", "HS512", "RS256", "hs256"])
    func otherAlgorithmsAreRejected(_ algorithm: String) {
        let token = Self.rawToken(header: #"{"alg":"\#(algorithm)","typ":"JWT"}"#, claims: claims().serialized())
        #expect(rejection(token)?.reason == "unsupported signing algorithm \"\(algorithm)\"")
        // Without a signature too: the algorithm is refused before any signature is looked at.
        #expect(rejection(token.split(separator: ".").prefix(2).joined(separator: ".") + ".")?.reason == "unsupported signing algorithm \"\(algorithm)\"")
    }

    // MARK: Issuer and signature

    @Test func otherIssuerHasNoSecret() {
        #expect(rejection(sign(claims(iss: "otherkey")))?.reason == "secret not found")
        #expect(rejection(Self.rawToken(header: #"{"alg":"HS256"}"#, claims: #"{"exp":1700000300}"#))?.reason == "secret not found")
    }

    @Test func flippedSignatureCharacterIsRejected() {
        var token = Array(sign(claims()))
        let index = token.count - 20
        token[index] = token[index] == "A" ? "B" : "A"
        #expect(rejection(String(token))?.reason == "invalid token signature")
    }

    @Test func otherSecretOrMissingSignatureIsRejected() {
        #expect(rejection(sign(claims(), secret: "othersecret"))?.reason == "invalid token signature")
        let token = sign(claims())
        #expect(rejection(String(token[..<token.lastIndex(of: ".")!]) + ".")?.reason == "invalid token signature")
        #expect(rejection(String(token[..<token.lastIndex(of: ".")!]) + ".a+b/")?.reason == "invalid token signature")
    }

    @Test func headerMayCarryOtherMembers() {
        #expect(accepts(Self.rawToken(header: #"{"typ":"JWT","kid":"x","alg":"HS256"}"#, claims: claims().serialized())))
    }

    // MARK: Validity window

    @Test func expiryHasSixtySecondsLeeway() {
        #expect(accepts(sign(claims(exp: Self.now - 60))))
        #expect(rejection(sign(claims(exp: Self.now - 61)))?.reason == "token expired")
    }

    @Test func notBeforeHasSixtySecondsLeeway() {
        #expect(accepts(sign(claims(nbf: Self.now + 60))))
        #expect(rejection(sign(claims(nbf: Self.now + 61)))?.reason == "token not valid yet")
    }

    @Test func tokenWithoutTimesIsAccepted() {
        #expect(accepts(sign(claims(exp: nil, nbf: nil))))
    }

    @Test func issuedAtIsNotChecked() {
        let future = JSONValue.object([
            JSONMember("iss", .string("devkey")), JSONMember("iat", .integer(Self.now + 86400)),
            JSONMember("sha256", .string(Self.checksum(body))),
        ])
        #expect(accepts(sign(future)))
    }

    // MARK: Body checksum

    @Test func missingChecksumIsRejected() {
        #expect(rejection(sign(claims(sha256: .some(nil))))?.reason.contains("checksum") == true)
    }

    @Test func checksumOfAnotherBodyIsRejected() {
        #expect(rejection(sign(claims(sha256: Self.checksum(Array("{}".utf8)))))?.reason.contains("checksum") == true)
        #expect(rejection(sign(claims()), body: .bytes(body + [0x20]))?.reason.contains("checksum") == true)
    }

    @Test func checksumMustBePaddedStandardBase64() {
        let digest = Digest.sha256(body)
        #expect(rejection(sign(claims(sha256: Base64.standard(digest, padded: false))))?.reason.contains("checksum") == true)
        #expect(rejection(sign(claims(sha256: Base64.url(digest))))?.reason.contains("checksum") == true)
    }

    @Test func tooLargeBodyIsRejected() {
        #expect(rejection(sign(claims()), body: .tooLarge)?.reason == "body larger than 64 KiB")
        let large = [UInt8](repeating: 0x20, count: Request.maximumBodySize + 1)
        #expect(rejection(sign(claims(sha256: Self.checksum(large))), body: .bytes(large))?.reason == "body larger than 64 KiB")
    }

    // MARK: Event mapping (§7.2)

    static func participantEvent(_ event: String, reason: String?) -> [UInt8] {
        let reasonMember = reason.map { #","disconnectReason":\#($0)"# } ?? ""
        return Array(#"{"event":"\#(event)","room":{"name":"r"},"participant":{"identity":"p"\#(reasonMember)}}"#.utf8)
    }

    @Test(arguments: [nil, #""CLIENT_INITIATED""#, "1", #""JOIN_FAILURE""#, "0"] as [String?])
    func joinedMeansConnected(_ reason: String?) {
        #expect(WebhookEvent.parse(Self.participantEvent("participant_joined", reason: reason))?.jobEvent == .participantConnected)
    }

    @Test(arguments: ["participant_left", "participant_connection_aborted"], [#""CLIENT_INITIATED""#, "1", #""1""#])
    func clientInitiatedMeansIntentional(_ event: String, _ reason: String) {
        #expect(WebhookEvent.parse(Self.participantEvent(event, reason: reason))?.jobEvent == .participantDisconnectedIntentionally)
    }

    @Test(arguments: ["participant_left", "participant_connection_aborted"],
          [nil, #""UNKNOWN_REASON""#, "0", #""0""#, #""JOIN_FAILURE""#, "7", #""SIGNAL_CLOSE""#, #""MEDIA_FAILURE""#, "99", #""SOME_FUTURE_REASON""#, "null"] as [String?])
    func otherReasonsMeanAborted(_ event: String, _ reason: String?) {
        #expect(WebhookEvent.parse(Self.participantEvent(event, reason: reason))?.jobEvent == .participantConnectionAborted)
    }

    @Test(arguments: ["room_started", "room_finished", "track_published", "", "PARTICIPANT_LEFT"])
    func otherEventsAreIgnored(_ event: String) {
        let parsed = WebhookEvent.parse(Self.participantEvent(event, reason: #""CLIENT_INITIATED""#))
        #expect(parsed?.event == event)
        #expect(parsed?.room == "r")
        #expect(parsed?.participantIdentity == "p")
        #expect(parsed?.jobEvent == nil)
    }

    @Test func absentEventIsIgnored() {
        #expect(WebhookEvent.parse(Array(#"{"room":{"name":"r"}}"#.utf8))?.jobEvent == nil)
    }

    // MARK: Proto-JSON leniency

    @Test func snakeCaseMembersAreRead() {
        let event = WebhookEvent.parse(Array(#"{"event":"participant_left","room":{"name":"r","creation_time":"1700000000"},"participant":{"identity":"p","disconnect_reason":"CLIENT_INITIATED","joined_at":1700000000},"created_at":1700000000}"#.utf8))
        #expect(event == WebhookEvent(event: "participant_left", room: "r", participantIdentity: "p", disconnectReason: .clientInitiated))
        #expect(event?.jobEvent == .participantDisconnectedIntentionally)
    }

    @Test func unknownMembersAreIgnored() {
        let event = WebhookEvent.parse(Array(#"{"event":"participant_joined","id":"EV_x","createdAt":"1700000000","numDropped":0,"room":{"name":"r","sid":"RM_x","numParticipants":2},"participant":{"identity":"p","sid":"PA_x","state":"ACTIVE","tracks":[],"permission":{"canPublish":true}},"futureField":{"a":[1,2]}}"#.utf8))
        #expect(event == WebhookEvent(event: "participant_joined", room: "r", participantIdentity: "p", disconnectReason: nil))
    }

    @Test(arguments: [#"{"event":"participant_left"}"#, #"{"event":"participant_left","room":null,"participant":null}"#])
    func missingRoomAndParticipantReadAsEmpty(_ text: String) {
        let event = WebhookEvent.parse(Array(text.utf8))
        #expect(event == WebhookEvent(event: "participant_left", room: "", participantIdentity: "", disconnectReason: nil))
    }

    @Test(arguments: ["", "not json", "[]", "null", #""participant_left""#, #"{"event":"x""#])
    func unparsableBodiesYieldNothing(_ text: String) {
        #expect(WebhookEvent.parse(Array(text.utf8)) == nil)
    }

    /// LiveKit's protojson decoder rejects these events as a whole.
    @Test(arguments: [
        #"{"event":5}"#,
        #"{"event":"participant_left","room":"r"}"#,
        #"{"event":"participant_left","room":{"name":1}}"#,
        #"{"event":"participant_left","participant":{"identity":true}}"#,
        #"{"event":"participant_left","participant":{"identity":"p","disconnectReason":1.5}}"#,
        #"{"event":"participant_left","participant":{"identity":"p","disconnectReason":{}}}"#,
        #"{"event":"participant_left","participant":{"identity":"p","disconnectReason":1,"disconnect_reason":1}}"#,
        #"{"event":"a","event":"b"}"#,
    ])
    func wronglyTypedOrRepeatedFieldsYieldNothing(_ text: String) {
        #expect(WebhookEvent.parse(Array(text.utf8)) == nil)
    }

    @Test func disconnectReasonsDescribeThemselves() {
        #expect(WebhookEvent.DisconnectReason(rawValue: 15).description == "MEDIA_FAILURE")
        #expect(WebhookEvent.DisconnectReason(rawValue: 42).description == "42")
        #expect(WebhookEvent.parse(Self.participantEvent("participant_left", reason: #""SIP_TRUNK_FAILURE""#))?.disconnectReason?.rawValue == 13)
    }
}
