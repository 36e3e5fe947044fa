/// Which outbound connections the address policy governs (§13.1 "Exempt"): servers listed by name
/// in `LIVEKIT_FULL_ACCESS_HOMESERVERS` (not through `*`) and everything their resolution leads to
/// are vouched for by the operator, as are the URLs of `LIVEKIT_CS_API_URL_OVERRIDES`.
public struct OutboundAddressRules: Sendable {
    public let policy: OutboundAddressPolicy
    let listedServers: Set<String>
    let overriddenServers: Set<String>

    /// For unit tests whose fakes stand at no real address.
    public static let unrestricted = OutboundAddressRules(policy: .unrestricted)

    public init(policy: OutboundAddressPolicy, accessPolicy: AccessPolicy = .everyone, overrides: CSAPIURLOverrides = CSAPIURLOverrides()) {
        self.policy = policy
        if case .servers(let names) = accessPolicy {
            listedServers = Set(names)
        } else {
            listedServers = []
        }
        overriddenServers = Set(overrides.entries.keys)
    }

    /// The policy for federation discovery and userinfo of `serverName`; nil when nothing is checked.
    func federation(of serverName: String) -> OutboundAddressPolicy? {
        policy.blocksNothing || listedServers.contains(serverName) ? nil : policy
    }

    /// The policy for the client-server API of `serverName` (well-known and delayed-event actions).
    public func clientServerAPI(of serverName: String) -> OutboundAddressPolicy? {
        overriddenServers.contains(serverName) ? nil : federation(of: serverName)
    }
}

extension Configuration {
    /// The address rules these settings give (§13.1).
    public var outboundAddressRules: OutboundAddressRules {
        OutboundAddressRules(policy: addressPolicy, accessPolicy: accessPolicy, overrides: csAPIURLOverrides)
    }
}
