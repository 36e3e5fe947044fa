import FoundationEssentials
import Synchronization

@testable import LKJWTLogic

/// Answers outbound requests from a script and records them, so behaviour is tested without sockets.
final class ScriptedHTTPClient: HTTPClient {
    typealias Script = @Sendable (OutboundRequest) throws(OutboundError) -> OutboundResponse
    private let script: Script
    private let recorded = Mutex<[RecordedRequest]>([])

    struct RecordedRequest: Sendable {
        let method: String
        let url: String
        let headers: [String: String]
        let body: [UInt8]
        let connectAddress: String?
    }

    init(_ script: @escaping Script) {
        self.script = script
    }

    func send(_ request: OutboundRequest) throws(OutboundError) -> OutboundResponse {
        let headers = Dictionary(request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        recorded.withLock {
            $0.append(RecordedRequest(
                method: request.method, url: request.url, headers: headers, body: request.body,
                connectAddress: request.connectAddress.map { "\($0.host):\($0.port)" }))
        }
        return try script(request)
    }

    var requests: [RecordedRequest] { recorded.withLock { $0 } }

    func requests(containing fragment: String) -> [RecordedRequest] {
        requests.filter { $0.url.contains(fragment) }
    }
}

struct FixedClock: WallClock {
    let instant: Date
    init(_ seconds: Double = 1_700_000_000) { instant = Date(timeIntervalSince1970: seconds) }
    func now() -> Date { instant }
}

extension OutboundResponse {
    static func json(_ status: Int, _ text: String) -> OutboundResponse {
        OutboundResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
    }
}
