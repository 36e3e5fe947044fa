/// Which homeservers' users are "full-access" (room creation, delegation), from
/// `LIVEKIT_FULL_ACCESS_HOMESERVERS` (contract §2.1, §1.2).
public enum AccessPolicy: Sendable, Equatable, CustomStringConvertible {
    case everyone
    /// Exact, case-sensitive server names (ports included).
    case servers([String])

    /// Splits on `,` and any Unicode whitespace, as upstream's `strings.Fields`; empty items are
    /// dropped. Only a list that is exactly `["*"]` is the wildcard; an empty list defaults to it.
    public static func parse(_ value: String) -> AccessPolicy {
        let names = names(in: value)
        if names.isEmpty || names == ["*"] { return .everyone }
        return .servers(names)
    }

    /// The items of a `LIVEKIT_FULL_ACCESS_HOMESERVERS` value; empty means "not set" (§10.3 banner).
    static func names(in value: String) -> [String] {
        value.unicodeScalars
            .split(whereSeparator: { $0 == "," || $0.properties.isWhitespace })
            .map { String(Substring($0)) }
    }

    func evaluate(serverName: String) -> AccessDecision {
        switch self {
        case .everyone:
            return AccessDecision(access: .full, reason: "every homeserver has full access")
        case .servers(let names) where names.contains(serverName):
            return AccessDecision(access: .full, reason: "\(serverName) is listed in LIVEKIT_FULL_ACCESS_HOMESERVERS")
        case .servers:
            return AccessDecision(access: .restricted, reason: "\(serverName) is not listed in LIVEKIT_FULL_ACCESS_HOMESERVERS")
        }
    }

    /// The list as `LIVEKIT_FULL_ACCESS_HOMESERVERS` would spell it.
    public var description: String {
        switch self {
        case .everyone: "*"
        case .servers(let names): names.joined(separator: ",")
        }
    }
}

/// The outcome of `AccessPolicy.evaluate`, kept with its reason so refusals can be logged usefully.
public struct AccessDecision: Sendable, Equatable {
    public enum Access: String, Sendable {
        case full
        case restricted
    }

    public let access: Access
    public let reason: String

    public init(access: Access, reason: String) {
        self.access = access
        self.reason = reason
    }

    var isFull: Bool { access == .full }
}
