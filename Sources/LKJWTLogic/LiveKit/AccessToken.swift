import FoundationEssentials

/// A LiveKit access token: HS256 JWS over the claims of contract §6.1/§6.2.
public struct AccessToken: Sendable {
    public struct SigningError: Error, Sendable, CustomStringConvertible {
        public var description: String { "API key or secret is empty" }
    }

    /// Clients join for an hour; server API tokens live six hours as LiveKit's SDKs issue them.
    static let joinValidity: Duration = .seconds(3600)
    static let serverValidity: Duration = .seconds(21600)

    static let encodedHeader = Base64.url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    let issuer: String
    /// Join tokens carry the identity as `sub` and again as `identity`; server tokens carry neither.
    public let identity: String?
    /// Unix seconds, as the claims carry it.
    let issuedAt: Int64
    let validity: Duration
    let grant: VideoGrant

    public init(issuer: String, identity: String?, issuedAt: Date, validity: Duration, grant: VideoGrant) {
        self.issuer = issuer
        self.identity = identity
        self.issuedAt = issuedAt.unixSeconds
        self.validity = validity
        self.grant = grant
    }

    public static func join(apiKey: String, identity: String, room: String, issuedAt: Date) -> AccessToken {
        AccessToken(issuer: apiKey, identity: identity, issuedAt: issuedAt, validity: joinValidity, grant: .join(room: room))
    }

    public static func server(apiKey: String, grant: VideoGrant, issuedAt: Date) -> AccessToken {
        AccessToken(issuer: apiKey, identity: nil, issuedAt: issuedAt, validity: serverValidity, grant: grant)
    }

    public var claims: JSONValue {
        var members = [JSONMember("iss", .string(issuer))]
        if let identity { members.append(JSONMember("sub", .string(identity))) }
        members += [
            JSONMember("exp", .integer(issuedAt.saturatingAdding(validity.components.seconds))),
            JSONMember("nbf", .integer(issuedAt)),
            JSONMember("iat", .integer(issuedAt)),
        ]
        if let identity { members.append(JSONMember("identity", .string(identity))) }
        members.append(JSONMember("video", .object(grant.members)))
        return .object(members)
    }

    public func signed(secret: String) throws(SigningError) -> String {
        guard !issuer.isEmpty, !secret.isEmpty else { throw SigningError() }
        return AccessToken.sign(claims: claims, secret: secret)
    }

    /// Compact JWS with the fixed HS256 header; also used by tests to sign webhook tokens.
    public static func sign(claims: JSONValue, secret: String) -> String {
        let signingInput = encodedHeader + "." + Base64.url(Array(claims.serialized().utf8))
        let signature = Digest.hmacSHA256(key: Array(secret.utf8), message: Array(signingInput.utf8))
        return signingInput + "." + Base64.url(signature)
    }
}
