/// Finds a server's client-server API base URL (contract §9.1): an operator override, else
/// `/.well-known/matrix/client`, cached for 4 hours (successes only).
public final class ClientServerAPIResolver: Sendable {
    public enum Outcome: Sendable, Equatable {
        case resolved(baseURL: String)
        case failed(reason: String)
    }

    static let cacheLifetime: Duration = .seconds(4 * 3600)
    static let sizeLimit = 65_535
    /// Discovery runs at request time too (§3.4, §3.6), where a worker must not wait 30 s (§13.2).
    static let discoveryTimeout: Duration = .seconds(10)
    static let maximumRedirects = 5

    let overrides: CSAPIURLOverrides
    let http: any HTTPClient
    let addressRules: OutboundAddressRules
    private let cache: ExpiringCache<Outcome>

    public init(
        overrides: CSAPIURLOverrides, http: any HTTPClient, clock: any WallClock,
        addressRules: OutboundAddressRules = .unrestricted
    ) {
        self.overrides = overrides
        self.http = http
        self.addressRules = addressRules
        self.cache = ExpiringCache(clock: clock)
    }

    public func resolve(_ serverName: String) -> Outcome {
        if let override = overrides[serverName] { return .resolved(baseURL: override) }
        return cache.value(for: serverName) {
            let outcome = discover(serverName)
            if case .resolved = outcome { return (outcome, Self.cacheLifetime) }
            return (outcome, nil)
        }
    }

    private func discover(_ serverName: String) -> Outcome {
        let request = OutboundRequest(
            url: "https://\(serverName)/.well-known/matrix/client", headers: [("Accept", "application/json")],
            timeout: Self.discoveryTimeout, maximumRedirects: Self.maximumRedirects, redirectsOnlyToHTTPS: true,
            maximumResponseSize: Self.sizeLimit, addressPolicy: addressRules.clientServerAPI(of: serverName), serverName: serverName)
        let response: OutboundResponse
        do {
            response = try http.send(request)
        } catch {
            return .failed(reason: "fetching .well-known/matrix/client of \(serverName): \(error.message)")
        }
        if response.status == 404 {
            return .failed(reason: "no .well-known/matrix/client record found for \(serverName)")
        }
        guard response.status == 200 else {
            return .failed(reason: ".well-known/matrix/client of \(serverName) answered HTTP \(response.status)")
        }
        guard let body = try? JSONParser.parse(response.body), case .object = body,
            let baseURL = body["m.homeserver"]?["base_url"]?.stringValue, !baseURL.isEmpty
        else {
            return .failed(reason: ".well-known/matrix/client of \(serverName) has no string m.homeserver.base_url")
        }
        if let problem = Self.unusableBaseURL(baseURL) ?? http.unusableURL(baseURL) {
            return .failed(reason: ".well-known/matrix/client of \(serverName) has an unusable m.homeserver.base_url: \(problem)")
        }
        return .resolved(baseURL: baseURL)
    }
}
