import FoundationEssentials

/// Why a webhook request was not accepted; the reason goes to the log, so it never quotes the secret or
/// the token.
public struct WebhookRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// Checks that a webhook came from the SFU (contract §7.1 steps 1–5), as LiveKit's own receiver does:
/// a raw HS256 JWT in `Authorization` whose `sha256` claim pins the body.
public struct WebhookVerifier: Sendable {
    /// go-jose's default leeway, which LiveKit's receiver relies on for `exp` and `nbf`.
    static let leeway: Double = 60

    private let apiKey: String
    private let apiSecret: HMACKey
    private let clock: any WallClock

    public init(apiKey: String, apiSecret: String, clock: any WallClock) {
        self.apiKey = apiKey
        self.apiSecret = HMACKey(apiSecret)
        self.clock = clock
    }

    /// The body bytes when the request is authentic.
    public func verify(authorization: String?, body: Request.Body) -> Result<[UInt8], WebhookRejection> {
        Result { () throws(WebhookRejection) in try authenticate(authorization: authorization, body: body) }
    }

    private func authenticate(authorization: String?, body: Request.Body) throws(WebhookRejection) -> [UInt8] {
        guard case .bytes(let bytes) = body, bytes.count <= Request.maximumBodySize else {
            throw WebhookRejection(reason: "body larger than 64 KiB")
        }
        guard let token = authorization, !token.isEmpty else {
            throw WebhookRejection(reason: "missing Authorization header")
        }
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3 else {
            throw WebhookRejection(reason: "malformed token: not three dot-separated segments")
        }

        let header = try Self.decodeObject(segments[0], part: "header")
        guard case .string(let algorithm)? = header["alg"] else {
            throw WebhookRejection(reason: "malformed token: header has no alg")
        }
        guard algorithm == "HS256" else {
            throw WebhookRejection(reason: "unsupported signing algorithm \"\(algorithm.prefix(16))\"")
        }
        let claims = try Claims(Self.decodeObject(segments[1], part: "claims"))
        // LiveKit looks the secret up by `iss`; with a single configured key anything else has none.
        guard claims.issuer == apiKey else {
            throw WebhookRejection(reason: "secret not found")
        }

        let signingInput = Array("\(segments[0]).\(segments[1])".utf8)
        let expected = apiSecret.authenticationCode(signingInput)
        guard let signature = Base64.decodeURL(String(segments[2])), Digest.constantTimeEquals(signature, expected) else {
            throw WebhookRejection(reason: "invalid token signature")
        }

        let now = clock.now().timeIntervalSince1970
        if let expiry = claims.expiry, now - Self.leeway > expiry {
            throw WebhookRejection(reason: "token expired")
        }
        if let notBefore = claims.notBefore, now + Self.leeway < notBefore {
            throw WebhookRejection(reason: "token not valid yet")
        }

        let checksum = Base64.standard(Digest.sha256(bytes), padded: true)
        guard Digest.constantTimeEquals(Array(claims.sha256.utf8), Array(checksum.utf8)) else {
            throw WebhookRejection(reason: "body checksum does not match the token's sha256 claim")
        }
        return bytes
    }

    private static func decodeObject(_ segment: Substring, part: String) throws(WebhookRejection) -> JSONValue {
        guard let bytes = Base64.decodeURL(String(segment)) else {
            throw WebhookRejection(reason: "malformed token: \(part) is not base64url")
        }
        guard let value = try? JSONParser.parse(bytes), case .object = value else {
            throw WebhookRejection(reason: "malformed token: \(part) is not a JSON object")
        }
        return value
    }

    /// The claims the receiver uses, typed as go-jose and LiveKit decode them (absent or `null` = unset).
    private struct Claims {
        let issuer: String
        let expiry: Double?
        let notBefore: Double?
        let sha256: String

        init(_ claims: JSONValue) throws(WebhookRejection) {
            issuer = try Self.string(claims, "iss")
            expiry = try Self.numericDate(claims, "exp")
            notBefore = try Self.numericDate(claims, "nbf")
            sha256 = try Self.string(claims, "sha256")
        }

        private static func string(_ claims: JSONValue, _ name: String) throws(WebhookRejection) -> String {
            switch claims[name] {
            case nil, .null?: return ""
            case .string(let text)?: return text
            default: throw WebhookRejection(reason: "malformed token: claim \(name) is not a string")
            }
        }

        /// Seconds since the epoch; fractions are dropped as go-jose's integer NumericDate drops them.
        private static func numericDate(_ claims: JSONValue, _ name: String) throws(WebhookRejection) -> Double? {
            guard let value = claims[name], value != .null else { return nil }
            guard case .number(let literal) = value, let seconds = Double(literal) else {
                throw WebhookRejection(reason: "malformed token: claim \(name) is not a number")
            }
            return seconds.rounded(.towardZero)
        }
    }
}
