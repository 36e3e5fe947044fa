import Glibc
import LKJWTTestSupport
import Logging
import Synchronization
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

/// Each thread keeps its own easy handles: never shared with another thread, reused by its own,
/// cleaned up when the thread or the client ends.
struct ThreadEasyHandlesTests {
    static let logger = Logger(label: "test")

    static func request(_ server: LocalHTTPServer, policy: OutboundAddressPolicy? = nil) -> OutboundRequest {
        OutboundRequest(url: "http://127.0.0.1:\(server.port)/", addressPolicy: policy, serverName: "threads.example")
    }

    static func loopback() throws -> OutboundAddressPolicy {
        OutboundAddressPolicy(blocklist: OutboundAddressPolicy.defaultBlocklist, allowlist: [try #require(IPRange.parse("127.0.0.1"))])
    }

    @Test func twoThreadsNeverShareAHandleAndEachKeepsItsOwn() {
        let handles = ThreadEasyHandles(tls: TLSSettings())
        let taken = Mutex<[Int: [(policed: Bool, handle: ObjectIdentifier)]]>([:])
        let arrived = Atomic(0)
        DispatchApply.concurrentPerform(iterations: 2) { thread in
            func take(_ policed: Bool) {
                let handle = ObjectIdentifier(handles.handle(policed: policed))
                taken.withLock { $0[thread, default: []].append((policed, handle)) }
            }
            take(false)
            take(true)
            // Both threads hold their handles at the same time before taking them again.
            arrived.add(1, ordering: .sequentiallyConsistent)
            while arrived.load(ordering: .sequentiallyConsistent) < 2 { usleep(1000) }
            for policed in [false, true, false, true, false] { take(policed) }
        }
        let byThread = taken.withLock { $0 }
        var all: Set<ObjectIdentifier> = []
        for thread in 0..<2 {
            let own = byThread[thread] ?? []
            #expect(own.count == 7)
            let unpoliced = Set(own.filter { !$0.policed }.map(\.handle))
            let policed = Set(own.filter(\.policed).map(\.handle))
            #expect(unpoliced.count == 1)
            #expect(policed.count == 1)
            #expect(unpoliced.isDisjoint(with: policed))
            #expect(all.isDisjoint(with: unpoliced.union(policed)))
            all.formUnion(unpoliced.union(policed))
        }
        #expect(all.count == 4)
    }

    @Test func aThreadsRequestsReuseItsConnectionAndItsEndClosesIt() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let client = CurlHTTPClient(tls: TLSSettings(), logger: Self.logger)
        let request = Self.request(server)
        _ = try client.send(request)
        let failures = Atomic(0)
        let worker = Thread {
            for _ in 0..<3 where (try? client.send(request)) == nil { failures.add(1, ordering: .relaxed) }
        }
        worker.join()
        _ = try client.send(request)
        #expect(failures.load(ordering: .relaxed) == 0)
        // This thread's connection, then the worker's (three requests), then this thread's again.
        #expect(server.received.map(\.connection) == [1, 2, 2, 2, 1])
        #expect(server.closed(2, within: .seconds(5)))
        #expect(!server.closed(1, within: .milliseconds(50)))
    }

    @Test func theClientsEndClosesTheConnectionsOfItsThreads() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        do {
            let client = CurlHTTPClient(tls: TLSSettings(), logger: Self.logger)
            _ = try client.send(Self.request(server))
            _ = try client.send(Self.request(server, policy: try Self.loopback()))
        }
        #expect(server.received.map(\.connection) == [1, 2])
        #expect(server.closed(1, within: .seconds(5)))
        #expect(server.closed(2, within: .seconds(5)))
    }

    @Test func aRequestMadeDuringAnotherOfTheSameKindGetsAHandleOfItsOwn() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let unused = try UnusedPort()
        defer { unused.close() }
        let loopback = try Self.loopback()
        // The gate logs the blocked address while its transfer runs; the log handler then sends a
        // second policed request from the same thread.
        let inner = Mutex<Result<OutboundResponse, OutboundError>?>(nil)
        let box = ClientBox()
        let logger = Logger(label: "test") { _ in
            CallingLogHandler {
                guard let client = box.client, inner.withLock({ $0 == nil }) else { return }
                let result = Result { () throws(OutboundError) in try client.send(Self.request(server, policy: loopback)) }
                inner.withLock { $0 = result }
            }
        }
        let client = CurlHTTPClient(tls: TLSSettings(), logger: logger)
        box.client = client
        let blocked = try #require(throws: OutboundError.self) {
            try client.send(OutboundRequest(url: "http://127.0.0.1:\(unused.port)/", addressPolicy: .standard, serverName: "threads.example"))
        }
        #expect(blocked.message == "address 127.0.0.1 is in LIVEKIT_IP_RANGE_BLOCKLIST")
        let response = try #require(inner.withLock { $0 }).get()
        #expect(response.status == 200)
        #expect(server.received.count == 1)
    }
}

private final class ClientBox: @unchecked Sendable {
    var client: CurlHTTPClient?
}

/// Calls `onLog` for every message.
private struct CallingLogHandler: LogHandler {
    let onLog: @Sendable () -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        onLog()
    }
}
