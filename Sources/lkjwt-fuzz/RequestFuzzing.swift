import LKJWTLogic

/// Request bodies of the three token endpoints, through the whole service: JSON, the endpoint
/// schemas (§3.3), validation, OpenID verification against the scripted homeserver.
enum RequestFuzzing {
    static let target = FuzzTarget(
        name: "request", summary: "POST bodies: field 0 = path (empty: /get_token), rest = body; answers well-formed") { bytes in
            let input = FuzzInput(bytes)
            let path = input.fields.count > 1 && !input.bytes(0).isEmpty ? input.text(0) : "/get_token"
            let body = input.fields.count > 1 ? input.rest(after: 1) : bytes
            _ = FuzzService.respondChecked(Request(method: .post, path: path, body: .bytes(body), remoteAddress: "127.0.0.1"))
        }
}
