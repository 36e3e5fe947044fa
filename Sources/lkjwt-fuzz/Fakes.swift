import FoundationEssentials
import LKJWTLogic
import Logging

/// The clock every target sees: fixed, so that an input always takes the same path.
struct FixedClock: WallClock {
    static let instant = Date(timeIntervalSince1970: 1_700_000_000)
    func now() -> Date { FixedClock.instant }
}

/// Answers outbound requests from a function of the request; no sockets.
struct ScriptedHTTPClient: HTTPClient {
    let script: @Sendable (OutboundRequest) -> OutboundResponse

    func send(_ request: OutboundRequest) throws(OutboundError) -> OutboundResponse {
        script(request)
    }

    /// Every URL is sendable: the script answers whatever is asked.
    func unusableURL(_ url: String) -> String? { nil }
}

/// SRV answers fixed per input.
struct FixedSRVResolver: SRVResolver {
    let answer: SRVAnswer
    func lookup(_ name: String, timeout: Duration) -> SRVAnswer { answer }
}

struct FixedRandomSource: RandomSource {
    func bytes(_ count: Int) -> [UInt8] { [UInt8](repeating: 0x5A, count: count) }
}

/// The HTTP surface as the tests' harness sets it up: a homeserver whose OpenID token "good-<user>"
/// belongs to `@<user>:<Host>`, an SFU that accepts every call, a delegation that stores nothing.
enum FuzzService {
    static let fullServer = "full.example.com:8448"

    final class Delegation: DelayedLeaveDelegation {
        func clientServerAPIBaseURL(for serverName: String) -> String? { "https://cs.example.com" }
        func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal? {
            invariant(handover.delayTimeout > 0, "a handover with delay_timeout \(handover.delayTimeout) was accepted")
            invariant(!handover.delayID.isEmpty, "a handover without delay_id was accepted")
            return nil
        }
        func apply(_ event: JobEvent, room: String, identity: String) {}
    }

    static let service: AuthorizationService = {
        let http = ScriptedHTTPClient { request in
            if request.url.contains("/twirp/") { return OutboundResponse(status: 200) }
            let host = request.headers["Host"] ?? ""
            guard let token = request.url.split(separator: "access_token=").last, token.hasPrefix("good-") else {
                return OutboundResponse(status: 401, body: Array(#"{"errcode":"M_UNKNOWN_TOKEN"}"#.utf8))
            }
            return OutboundResponse(status: 200, body: Array(#"{"sub":"@\#(token.dropFirst(5)):\#(host)"}"#.utf8))
        }
        let configuration = Configuration(
            liveKitURL: "wss://sfu.example.com", apiKey: "devkey", apiSecret: "devsecret", accessPolicy: .servers([fullServer]))
        return AuthorizationService(
            configuration: configuration,
            dependencies: .init(http: http, clock: FixedClock(), srv: FixedSRVResolver(answer: .notFound), random: FixedRandomSource(), delegation: Delegation(), addressRules: configuration.outboundAddressRules),
            logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
    }()

    /// Whatever the request, the answer is well-formed: a known status, and JSON where it says so.
    static func respondChecked(_ request: Request) -> Response {
        let response = service.respond(to: request)
        invariant((200...599).contains(response.status), "status \(response.status)")
        for header in response.headers {
            // A request value echoed into a header (CORS) must not be able to start a header of its own.
            invariant(!(header.name + header.value).utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }, "header \(header.name) breaks the line")
        }
        let contentType = response.headers["content-type"] ?? ""
        if contentType.hasPrefix("application/json"), !response.body.isEmpty {
            let body = try? JSONParser.parse(response.body)
            invariant(body != nil, "a JSON response that does not parse: \(String(decoding: response.body, as: UTF8.self).debugDescription)")
            if response.status >= 400, request.method != .head {
                invariant(body?["errcode"]?.stringValue != nil, "an error without errcode (status \(response.status))")
            }
        }
        if Route.match(path: request.path) == .sfuWebhook {
            invariant(response.status == 200, "webhook answered \(response.status), LiveKit would retry it")
        }
        return response
    }
}
