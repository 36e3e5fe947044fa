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
        let maximumRedirects: Int
        let redirectsOnlyToHTTPS: Bool
        let addressPolicy: OutboundAddressPolicy?
        let serverName: String
    }

    init(_ script: @escaping Script) {
        self.script = script
    }

    func send(_ request: OutboundRequest) throws(OutboundError) -> OutboundResponse {
        let headers = Dictionary(request.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
        recorded.withLock {
            $0.append(RecordedRequest(
                method: request.method.rawValue, url: request.url, headers: headers, body: request.body,
                connectAddress: request.connectAddress.map { "\($0.host):\($0.port)" },
                maximumRedirects: request.maximumRedirects, redirectsOnlyToHTTPS: request.redirectsOnlyToHTTPS,
                addressPolicy: request.addressPolicy, serverName: request.serverName))
        }
        return try script(request)
    }

    /// Every URL is sendable: the script answers whatever is asked; the real client's checks of
    /// a URL's form are tested with it (CurlHTTPClientTests).
    func unusableURL(_ url: String) -> String? { nil }

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
    static func json(_ status: HTTPStatus, _ text: String) -> OutboundResponse {
        OutboundResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(text.utf8))
    }
}

/// DNS SRV answers from a table, counting lookups.
final class TableSRVResolver: SRVResolver {
    let answers: [String: SRVAnswer]
    private let counter = Mutex<[String]>([])

    init(_ answers: [String: SRVAnswer]) {
        self.answers = answers
    }

    func lookup(_ name: String, timeout: Duration) -> SRVAnswer {
        counter.withLock { $0.append(name) }
        return answers[name] ?? .notFound
    }

    var lookups: [String] { counter.withLock { $0 } }
}

/// The time of day, for tests whose scheduler threads wait on real time.
struct RealTimeClock: WallClock {
    func now() -> Date { Date() }
}

/// Swift's generator: job IDs made within one microsecond must still differ.
struct GeneratorRandomSource: RandomSource {
    func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in generator.next() }
    }
}

/// A clock tests can move.
final class MovableClock: WallClock {
    private let current: Mutex<Date>
    init(_ seconds: Double = 1_700_000_000) { current = Mutex(Date(timeIntervalSince1970: seconds)) }
    func now() -> Date { current.withLock { $0 } }
    func advance(seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// A monotonic clock tests move by hand.
final class ManualMonotonicClock: MonotonicClock {
    private let current = Mutex(ContinuousClock.now)
    func now() -> ContinuousClock.Instant { current.withLock { $0 } }
    func advance(_ duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
}
