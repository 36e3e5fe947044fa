/// `RoomMembershipSource` over our homeserver's client-server API with the application service's
/// token (notes §4.3): `joined_members`, and MSC4502 `is_joined` for our own server. Only ever asks
/// `LIVEKIT_HS_SERVER_NAME`'s API (B2.8), an operator-configured destination (no address policy).
public struct HomeserverRoomMembership: RoomMembershipSource {
    let settings: ApplicationServiceSettings
    let clientServerAPI: ClientServerAPIResolver
    let http: any HTTPClient

    public init(settings: ApplicationServiceSettings, clientServerAPI: ClientServerAPIResolver, http: any HTTPClient) {
        self.settings = settings
        self.clientServerAPI = clientServerAPI
        self.http = http
    }

    public func joinedMembers(of room: String) -> JoinedMembersAnswer {
        switch get(JoinedMembersAnswer.path(room: room), maximumResponseSize: JoinedMembersAnswer.maximumResponseSize) {
        case .success(let response): JoinedMembersAnswer(status: response.status, body: response.body)
        case .failure(let error): .failed(error.description)
        }
    }

    public func isOwnServerJoined(_ room: String) -> ServerJoinedAnswer {
        let path = "/_matrix/client/unstable/io.element.msc4502/rooms/\(PercentEncoding.encode(room))/is_joined?server_name=\(PercentEncoding.encode(settings.serverName))"
        switch get(path, maximumResponseSize: 64 * 1024) {
        case .failure(let error):
            return .failed(error.description)
        case .success(let response):
            guard (200...299).contains(response.status) else { return .failed("is_joined answered HTTP \(response.status)") }
            switch (try? JSONParser.parse(response.body))?["joined"] {
            case .bool(true)?: return .joined
            // Absent reads as false, as upstream's client does (notes §2.9).
            case .bool(false)?, nil: return .notJoined
            default: return .failed("is_joined answered without a boolean `joined`")
            }
        }
    }

    private func get(_ path: String, maximumResponseSize: Int) -> Result<OutboundResponse, MembershipLookupError> {
        let baseURL: String
        switch clientServerAPI.resolve(settings.serverName) {
        case .resolved(let resolved): baseURL = resolved
        case .failed(let reason): return .failure(MembershipLookupError(reason))
        }
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        let request = OutboundRequest(
            url: base + path, headers: [("Authorization", "Bearer \(settings.asToken)"), ("Accept", "application/json")],
            timeout: .seconds(10), maximumRedirects: 0, maximumResponseSize: maximumResponseSize, serverName: settings.serverName)
        do {
            return .success(try http.send(request))
        } catch {
            return .failure(MembershipLookupError(error.message))
        }
    }
}

/// Why the homeserver could not be asked; only ever logged.
struct MembershipLookupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
