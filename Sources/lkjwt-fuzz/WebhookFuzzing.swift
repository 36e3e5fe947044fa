import LKJWTLogic

/// SFU webhooks (§7.1): the `Authorization` JWT and the body, as given and once more signed properly.
enum WebhookFuzzing {
    static let apiKey = "devkey"
    static let apiSecret = "devsecret"
    static let verifier = WebhookVerifier(apiKey: apiKey, apiSecret: apiSecret, clock: FixedClock())

    static let target = FuzzTarget(
        name: "webhook", summary: "field 0 = Authorization, rest = body; verifier, event parser, the endpoint") { bytes in
            let input = FuzzInput(bytes)
            let authorization = input.optionalText(0)
            let body = input.rest(after: 1)
            if case .success(let accepted) = verifier.verify(authorization: authorization, body: .bytes(body)) {
                invariant(accepted == body, "the verifier returned other bytes than the body")
            }
            // The same body with a token the SFU would send: must pass, whatever the body is.
            let token = signedToken(for: body)
            switch verifier.verify(authorization: token, body: .bytes(body)) {
            case .success(let accepted): invariant(accepted == body, "the verifier returned other bytes than the body")
            case .failure(let rejection): invariant(false, "a properly signed webhook was rejected: \(rejection)")
            }
            checkEvent(body)
            for token in [authorization ?? "", token] {
                _ = FuzzService.respondChecked(Request(
                    method: .post, path: "/sfu_webhook", headers: ["authorization": token], body: .bytes(body), remoteAddress: "127.0.0.1"))
            }
        }

    static func signedToken(for body: [UInt8]) -> String {
        let header = Base64.url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let checksum = Base64.standard(Digest.sha256(body), padded: true)
        let claims = JSONValue.object([
            JSONMember("iss", .string(apiKey)), JSONMember("exp", .integer(1_700_000_600)), JSONMember("nbf", .integer(1_699_999_000)),
            JSONMember("sha256", .string(checksum)),
        ])
        let payload = Base64.url(Array(claims.serialized().utf8))
        let signature = Digest.hmacSHA256(key: Array(apiSecret.utf8), message: Array("\(header).\(payload)".utf8))
        return "\(header).\(payload).\(Base64.url(signature))"
    }

    /// A parsed event written back as protojson parses to the same event.
    static func checkEvent(_ body: [UInt8]) {
        guard let event = WebhookEvent.parse(body) else { return }
        invariant(WebhookEvent.parse(body) == event, "parsing is not deterministic")
        _ = event.jobEvent
        var participant = [JSONMember("identity", .string(event.participantIdentity))]
        if let reason = event.disconnectReason {
            participant.append(JSONMember("disconnectReason", .integer(Int64(reason.rawValue))))
        }
        let written = JSONValue.object([
            JSONMember("event", .string(event.event)), JSONMember("room", .object([JSONMember("name", .string(event.room))])),
            JSONMember("participant", .object(participant)),
        ]).serialized()
        invariant(WebhookEvent.parse(Array(written.utf8)) == event, "event written back reads differently: \(written.debugDescription)")
    }
}
