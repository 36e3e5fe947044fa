import FoundationEssentials
import Glibc
import LKJWTTestSupport
import Synchronization
import Testing

@testable import LKJWTLogic

/// Contract §13.2: waiting for another thread's lookup, DNS failures and DNS timeouts are bounded
/// by the caller's own deadline.
struct BoundedTimeTests {
    /// SRV answers from a table, recording the timeout each lookup was given.
    final class TimedSRVResolver: SRVResolver {
        let answer: SRVAnswer
        private let recorded = Mutex<[Duration]>([])
        init(_ answer: SRVAnswer) { self.answer = answer }
        func lookup(_ name: String, timeout: Duration) -> SRVAnswer {
            recorded.withLock { $0.append(timeout) }
            return answer
        }
        var timeouts: [Duration] { recorded.withLock { $0 } }
    }

    static func resolver(srv: any SRVResolver, clock: MovableClock = MovableClock(), wellKnown: @escaping ScriptedHTTPClient.Script = { _ throws(OutboundError) in
        throw OutboundError(.transport, "Could not resolve host")
    }) -> ServerResolver {
        ServerResolver(http: ScriptedHTTPClient(wellKnown), srv: srv, clock: clock, random: FixedRandomSource(byte: 0))
    }

    /// Computes "k" on another thread, finishing with `result` once `release` is signalled; returns
    /// when that computation is in flight.
    static func computationInFlight(_ cache: ExpiringCache<Int>, _ result: (Int, Duration?), until release: LKJWTLogic.Semaphore) -> Thread {
        let computing = Semaphore()
        let thread = Thread {
            _ = cache.value(for: "k", deadline: Deadline(after: .seconds(30))) {
                computing.signal()
                release.wait(timeout: .seconds(30))
                return result
            }
        }
        computing.wait(timeout: .seconds(5))
        return thread
    }

    @Test func aWaiterGivesUpAtItsOwnDeadline() {
        let cache = ExpiringCache<Int>(clock: MovableClock())
        let release = Semaphore()
        let first = Self.computationInFlight(cache, (1, .seconds(60)), until: release)
        let start = ContinuousClock.now
        let waited = cache.value(for: "k", deadline: Deadline(after: .milliseconds(200))) { (2, nil) }
        let elapsed = start.duration(to: .now)
        #expect(waited == nil)
        #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(2))
        release.signal()
        first.join()
        #expect(cache.value(for: "k", deadline: Deadline(after: .seconds(1))) { (3, nil) } == 1)
    }

    @Test func aWaiterGetsTheResultThatArrivesBeforeItsDeadline() {
        let clock = MovableClock()
        let cache = ExpiringCache<Int>(clock: clock)
        let waiterArrived = Semaphore()
        // Not kept: only the waiter's share of this very computation is tested.
        let first = Self.computationInFlight(cache, (7, nil), until: waiterArrived)
        // The waiter reads the clock under the cache's lock just before it finds the computation in
        // flight; finishing needs that lock, so it lands after the waiter joined.
        clock.signalNextRead(waiterArrived)
        #expect(cache.value(for: "k", deadline: Deadline(after: .seconds(10))) { (8, nil) } == 7)
        first.join()
    }

    @Test func aResolutionWaitingForAHangingWellKnownEndsAtItsDeadline() throws {
        let started = Semaphore()
        let release = Semaphore()
        let resolver = Self.resolver(srv: TimedSRVResolver(.notFound)) { _ throws(OutboundError) in
            started.signal()
            release.wait(timeout: .milliseconds(30_000))
            throw OutboundError(.transport, "timed out")
        }
        let name = try #require(ServerName.parse("silent.example"))
        let first = Thread { _ = try? resolver.resolve(name, deadline: Deadline(after: .seconds(30))) }
        started.wait(timeout: .milliseconds(5_000))
        let start = ContinuousClock.now
        #expect(throws: ServerResolver.Failure.self) { try resolver.resolve(name, deadline: Deadline(after: .milliseconds(300))) }
        #expect(start.duration(to: .now) < .seconds(2))
        release.signal()
        first.join()
    }

    @Test func dnsFailuresAreCachedForThirtySecondsAndSurviveForget() throws {
        let clock = MovableClock()
        let dns = TimedSRVResolver(.failure("DNS server did not answer (TRY_AGAIN)"))
        let resolver = Self.resolver(srv: dns, clock: clock)
        let name = try #require(ServerName.parse("dead-dns.example"))
        for _ in 0..<50 {
            #expect(try resolver.resolve(name, deadline: Deadline(after: .seconds(10))).map(\.connectPort) == [8448])
            resolver.forget(name)
        }
        #expect(dns.timeouts.count == 1)
        clock.advance(seconds: 29)
        _ = try resolver.resolve(name, deadline: Deadline(after: .seconds(10)))
        #expect(dns.timeouts.count == 1)
        clock.advance(seconds: 2)
        _ = try resolver.resolve(name, deadline: Deadline(after: .seconds(10)))
        #expect(dns.timeouts.count == 2)
    }

    @Test func lookupsGetWhatIsLeftOfTheDeadlineAndNoneUnderASecond() throws {
        let dns = TimedSRVResolver(.failure("timed out"))
        let resolver = Self.resolver(srv: dns)
        _ = try resolver.resolve(try #require(ServerName.parse("a.example")), deadline: Deadline(after: .seconds(3)))
        let given = try #require(dns.timeouts.first)
        #expect(given <= .seconds(3) && given > .milliseconds(2_500))
        _ = try resolver.resolve(try #require(ServerName.parse("b.example")), deadline: Deadline(after: .seconds(60)))
        #expect(dns.timeouts.last == ServerResolver.lookupTimeout)
        // Under a second left: no lookup, and nothing remembered, so the next request asks.
        let quick = TimedSRVResolver(.notFound)
        let hurried = Self.resolver(srv: quick)
        let name = try #require(ServerName.parse("c.example"))
        #expect(try hurried.resolve(name, deadline: Deadline(after: .milliseconds(500))).map(\.connectPort) == [8448])
        #expect(quick.timeouts.isEmpty)
        _ = try hurried.resolve(name, deadline: Deadline(after: .seconds(10)))
        #expect(quick.timeouts.count == 2)
    }
}

/// §13.2: a body that did not arrive in time is answered 408, before anything else is looked at.
struct BodyTimeoutTests {
    @Test(arguments: ["/get_token", "/sfu/get", "/delegate_delayed_leave"])
    func jsonEndpointsAnswerAMatrixError(path: String) {
        let harness = AuthorizationServiceTests.Harness()
        let response = harness.service.respond(to: Request(method: "POST", path: path, body: .timedOut, remoteAddress: "127.0.0.1"))
        #expect(response.status == 408)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"errcode":"M_UNKNOWN","error":"Request body timed out"}"# + "\n")
        #expect(response.headers.contains { $0.name == "Access-Control-Allow-Origin" })
        #expect(harness.userinfoCalls == 0)
        #expect(response.status.line == "408 Request Timeout")
    }

    @Test func theWebhookAnswersAPlain408() {
        let harness = AuthorizationServiceTests.Harness()
        let response = harness.service.respond(to: Request(method: "POST", path: "/sfu_webhook", body: .timedOut))
        #expect(response.status == 408)
        #expect(response.body.isEmpty)
    }
}
