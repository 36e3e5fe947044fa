import LKJWTLogic
import Logging

/// The application-service endpoints (AS-MODE.md B2) end to end: the request body, the identity
/// header, and what the homeserver answers to `is_joined`, the delayed-event look-up and
/// `fed_proxy` (whose `content` a remote server chose).
enum ApplicationServiceFuzzing {
    static let paths = [
        "/_matrix/client/v1/rtc/livekit/get_token", "/_matrix/federation/v1/rtc/livekit/get_token",
        "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/delegate_delayed_leave",
    ]
    static let base = "https://cs.hs.example.com"

    final class Delegation: DelayedLeaveDelegation {
        func clientServerAPIBaseURL(for serverName: String) -> String? { nil }
        func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal? {
            invariant(handover.actsAsOwner, "an application-service job that does not act as its owner")
            invariant(handover.serverName == "hs.example.com", "a job for \(handover.serverName.debugDescription)")
            invariant(handover.delayTimeout > 0, "a handover with delay \(handover.delayTimeout)")
            return nil
        }
        func apply(_ event: JobEvent, room: String, identity: String) {}
    }

    static let target = FuzzTarget(
        name: "application-service",
        summary: "fields: endpoint (first byte mod 3), identity header, homeserver status, homeserver body, request body; answers well-formed, as_token only to the homeserver") { bytes in
            let input = FuzzInput(bytes)
            let path = paths[Int(input.bytes(0).first ?? 0) % paths.count]
            let status = Int(input.text(2)) ?? 200
            let answer = input.bytes(3)
            let http = ScriptedHTTPClient { request in
                if request.url.contains("/twirp/") { return OutboundResponse(status: 200) }
                invariant(request.url.hasPrefix(base + "/_matrix/client/unstable/"), "a homeserver call to \(request.url.debugDescription)")
                invariant(request.headers["Authorization"] == "Bearer as-token", "a homeserver call without the as_token")
                return OutboundResponse(status: HTTPStatus((100...599).contains(status) ? status : 200), body: answer)
            }
            let settings = ApplicationServiceSettings(asToken: "as-token", hsToken: "hs-token", serverName: "hs.example.com")
            let configuration = Configuration(
                liveKitURL: "wss://sfu.example.com", apiKey: "devkey", apiSecret: "devsecret",
                csAPIURLOverrides: CSAPIURLOverrides(["hs.example.com": base]), applicationService: settings)
            let client = ApplicationServiceClient(
                settings: settings, http: http, clock: FixedClock(),
                clientServerAPI: ClientServerAPIResolver(overrides: configuration.csAPIURLOverrides, http: http, clock: FixedClock()))
            let service = AuthorizationService(
                configuration: configuration,
                dependencies: .init(
                    http: http, clock: FixedClock(), srv: FixedSRVResolver(answer: .notFound), random: FixedRandomSource(), delegation: Delegation(),
                    addressRules: configuration.outboundAddressRules, applicationService: client),
                logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
            let identity = input.text(1)
            let request = Request(
                method: "POST", path: path,
                headers: ["authorization": "Bearer hs-token", "x-matrix-user-identifier": identity, "x-matrix-origin": identity],
                body: .bytes(input.rest(after: 4)), remoteAddress: "127.0.0.1")
            let response = service.respond(to: request)
            invariant([200, 400, 401, 403, 413, 429, 500, 502, 503].contains(response.status), "status \(response.status)")
            let body = try? JSONParser.parse(response.body)
            invariant(body != nil, "an answer that is not JSON: \(String(decoding: response.body, as: UTF8.self).debugDescription)")
            if response.status != 200 {
                invariant(body?["errcode"]?.stringValue != nil, "an error without errcode (status \(response.status))")
            } else if path.hasSuffix("get_token") {
                guard case .object(let members)? = body else { return invariant(false, "a token answer that is not an object") }
                invariant(members.map(\.key) == ["jwt"] && members[0].value.stringValue != nil, "a token answer that is not exactly {jwt}")
            }
        }
}
