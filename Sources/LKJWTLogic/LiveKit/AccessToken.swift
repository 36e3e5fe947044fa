import FoundationEssentials

/// A LiveKit access token: HS256 JWS over the claims of contract §6.1/§6.2.
public struct AccessToken: Sendable {
    public struct SigningError: Error, Sendable, CustomStringConvertible {
        public var description: String { "API key or secret is empty" }
    }

    /// Clients join for an hour; server API tokens live six hours as LiveKit's SDKs issue them.
    static let joinValidity: Duration = .seconds(3600)
    static let serverValidity: Duration = .seconds(21600)

    static let encodedHeader = Array(Base64.url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)).utf8)

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

    public static func join(apiKey: String, identity: String, room: String, canPublish: Bool, canUpdateOwnMetadata: Bool, issuedAt: Date) -> AccessToken {
        AccessToken(
            issuer: apiKey, identity: identity, issuedAt: issuedAt, validity: joinValidity,
            grant: .join(room: room, canPublish: canPublish, canUpdateOwnMetadata: canUpdateOwnMetadata))
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
        try signed(with: HMACKey(secret))
    }

    public func signed(with key: HMACKey) throws(SigningError) -> String {
        guard !issuer.isEmpty, !key.isEmpty else { throw SigningError() }
        return AccessToken.sign(claims: claims, key: key)
    }

    /// Compact JWS with the fixed HS256 header; also used by tests to sign webhook tokens.
    public static func sign(claims: JSONValue, secret: String) -> String {
        sign(claims: claims, key: HMACKey(secret))
    }

    /// Built as bytes in one buffer, which is also the signing input.
    static func sign(claims: JSONValue, key: HMACKey) -> String {
        var token = encodedHeader
        token.reserveCapacity(1024)
        token.append(UInt8(ascii: "."))
        Base64.appendURL(claims.serializedBytes(), to: &token)
        let signature = key.authenticationCode(token)
        token.append(UInt8(ascii: "."))
        Base64.appendURL(signature, to: &token)
        return String(decoding: token, as: UTF8.self)
    }
}
