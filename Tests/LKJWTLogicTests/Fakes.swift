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

/// A clock tests can move.
final class MovableClock: WallClock {
    private let current: Mutex<Date>
    private let nextRead = NextRead()
    init(_ seconds: Double = 1_700_000_000) { current = Mutex(Date(timeIntervalSince1970: seconds)) }
    func now() -> Date {
        nextRead.happened()
        return current.withLock { $0 }
    }
    func advance(seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    /// Signals `semaphore` at the next read of the clock (see `NextRead`).
    func signalNextRead(_ semaphore: Semaphore) { nextRead.arm(semaphore) }
}

/// A monotonic clock tests move by hand.
final class ManualMonotonicClock: MonotonicClock {
    private let current = Mutex(ContinuousClock.now)
    private let nextRead = NextRead()
    func now() -> ContinuousClock.Instant {
        nextRead.happened()
        return current.withLock { $0 }
    }
    func advance(_ duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
    /// Signals `semaphore` at the next read of the clock (see `NextRead`).
    func signalNextRead(_ semaphore: Semaphore) { nextRead.arm(semaphore) }
}

/// A test's cue that another thread has reached the code that reads the clock (a cache lookup, an
/// admission decision), so that what must happen after that can wait for it instead of sleeping.
final class NextRead: Sendable {
    private let armed = Mutex<Semaphore?>(nil)
    func arm(_ semaphore: Semaphore) { armed.withLock { $0 = semaphore } }
    func happened() { armed.withLock { $0.take() }?.signal() }
}

/// Other bytes at every draw (a counter), the same from run to run: job IDs and owners differ
/// without the system generator.
final class CountingRandomSource: RandomSource {
    private let drawn = Mutex<UInt64>(0)

    func bytes(_ count: Int) -> [UInt8] {
        drawn.withLock { drawn in
            (0..<count).map { _ in
                drawn &+= 1
                return UInt8(truncatingIfNeeded: (drawn &* 0x9E37_79B9_7F4A_7C15) >> 56)
            }
        }
    }
}
