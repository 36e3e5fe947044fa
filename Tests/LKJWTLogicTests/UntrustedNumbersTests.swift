import FoundationEssentials
import LKJWTTestSupport
import Logging
import Synchronization
import Testing

@testable import LKJWTLogic

/// Contract §13.5: no number from a request, a remote server, a stored record or the clock traps;
/// hints are clamped to the activity's remaining time before any arithmetic.
struct UntrustedNumbersTests {
    static let now: Int64 = 1_700_000_000_000
    static let settings = JobMachine.Settings(sanityInterval: .zero)

    // MARK: The helper

    @Test func saturatingArithmeticStopsAtTheBounds() {
        #expect(Int64.max.saturatingAdding(1) == .max)
        #expect(Int64.min.saturatingAdding(-1) == .min)
        #expect(Int64(5).saturatingAdding(-7) == -2)
        #expect(Int64.min.saturatingSubtracting(1) == .min)
        #expect(Int64(0).saturatingSubtracting(.min) == .max)
        #expect(Int64(10).saturatingSubtracting(3) == 7)
        #expect(Int64.max.saturatingMultiplied(by: 1000) == .max)
        #expect(Int64.min.saturatingMultiplied(by: 2) == .min)
        #expect(Int64(-3).saturatingMultiplied(by: .max) == .min)
        #expect(Int64(-3).saturatingMultiplied(by: -4) == 12)
    }

    @Test func saturatingConversionsNeverTrap() {
        #expect(Int64(saturating: .nan) == 0)
        #expect(Int64(saturating: .infinity) == .max)
        #expect(Int64(saturating: -.infinity) == .min)
        #expect(Int64(saturating: 1e30) == .max)
        #expect(Int64(saturating: -1e30) == .min)
        #expect(Int64(saturating: 9_223_372_036_854_775_807.0) == .max)
        #expect(Int64(saturating: -2.9) == -2)
        #expect(Int64(saturatingDigits: "9223372036854775807") == .max)
        #expect(Int64(saturatingDigits: "99999999999999999999999999") == .max)
        #expect(Int64(saturatingDigits: "0042") == 42)
        #expect(Int64(saturatingDigits: "") == nil)
        #expect(Int64(saturatingDigits: "-1") == nil)
        #expect(Int64(saturatingDigits: "1e3") == nil)
        #expect(Duration.seconds(Int64.max).milliseconds == .max)
        #expect(Duration.seconds(-Int64.max).milliseconds == .min)
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Date(timeIntervalSince1970: 1e300).unixMilliseconds == .max)
        #expect(Date(timeIntervalSince1970: -1e300).unixSeconds == .min)
        #expect(Date(timeIntervalSince1970: 1_700_000_000.9).unixMilliseconds == 1_700_000_000_900)
        #expect((-5).clamped(to: 0...10) == 0 && 50.clamped(to: 0...10) == 10 && 7.clamped(to: 0...10) == 7)
    }

    // MARK: Hints from the homeserver (§9.3)

    static func hint(_ headers: [(name: String, value: String)], _ body: String = "") -> Int64? {
        DelayedEventClient.retryAfter(
            OutboundResponse(status: 429, headers: HTTPHeaders(headers), body: Array(body.utf8)), now: Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test func hugeHintsSaturate() {
        #expect(Self.hint([("Retry-After", "9223372036854775")]) == 9_223_372_036_854_775_000)
        #expect(Self.hint([("Retry-After", "9223372036854776")]) == .max)
        #expect(Self.hint([("Retry-After", "99999999999999999999999999999")]) == .max)
        #expect(Self.hint([("Retry-After", "-99999999999999999999999999999")]) == 0)
        #expect(Self.hint([], #"{"retry_after_ms":9223372036854775807}"#) == .max)
        #expect(Self.hint([], #"{"retry_after_ms":99999999999999999999999}"#) == .max)
        #expect(Self.hint([], #"{"retry_after_ms":9223372036854775000}"#) == 9_223_372_036_854_775_000)
        #expect(Self.hint([], #"{"retry_after_ms":-99999999999999999999999}"#) == nil)
        // The latest date HTTPDate accepts, and one long past.
        let latest: Int64 = (253_402_300_799 - 1_700_000_000) * 1000
        #expect(Self.hint([("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT")]) == latest)
        #expect(Self.hint([("Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT")]) == 0)
    }

    @Test(arguments: [Int64.max, 9_223_372_036_854_775_000, 253_402_300_799_000, 3_600_001])
    func hintsBeyondTheRemainingTimeGiveUp(hint: Int64) {
        let decision = RetryPolicy.next(
            after: Self.now, interval: 1000, sequenceStart: Self.now - 1000, maxElapsed: 3_600_000, retryAfter: hint, random: FixedRandomSource(byte: 0))
        #expect(decision == .giveUp)
    }

    @Test func aHintThatFitsExactlyIsHonoured() {
        let decision = RetryPolicy.next(
            after: Self.now, interval: 1000, sequenceStart: Self.now - 1000, maxElapsed: 5000, retryAfter: 4000, random: FixedRandomSource(byte: 0))
        #expect(decision == .retry(at: Self.now + 4000, nextInterval: 1000))
        let negative = RetryPolicy.next(
            after: Self.now, interval: 1000, sequenceStart: Self.now, maxElapsed: 5000, retryAfter: .min, random: FixedRandomSource(byte: 0))
        #expect(negative == .retry(at: Self.now, nextInterval: 1000))
    }

    /// Stored retry state is a record's numbers: any of them may be absurd.
    @Test(arguments: [
        (Int64.max, Int64.min, Int64.max), (Int64.min, Int64.max, Int64.min), (0, 0, 0), (-5, Int64.max, Int64.max),
        (Int64.max, Int64.max, Int64.min),
    ] as [(Int64, Int64, Int64)])
    func storedRetryStateNeverTraps(interval: Int64, sequenceStart: Int64, maxElapsed: Int64) {
        for hint in [nil, Int64.max, Int64.min, 0] as [Int64?] {
            for now in [Self.now, Int64.max, Int64.min] {
                let decision = RetryPolicy.next(
                    after: now, interval: interval, sequenceStart: sequenceStart, maxElapsed: maxElapsed, retryAfter: hint,
                    random: FixedRandomSource(byte: 0xFF))
                if case .retry(_, let next) = decision {
                    #expect((RetryPolicy.initialInterval...RetryPolicy.maximumInterval).contains(next))
                }
            }
        }
    }

    @Test func aClockThatSteppedBackCountsAsNoTimeElapsed() {
        let decision = RetryPolicy.next(
            after: Self.now - 10_000, interval: 1000, sequenceStart: Self.now, maxElapsed: 2000, retryAfter: 2000, random: FixedRandomSource(byte: 0))
        #expect(decision == .retry(at: Self.now - 8000, nextInterval: 1000))
    }

    // MARK: The job machine with hostile hints and records

    static func connectedJob(timeout: Int64) throws -> (DelayedLeaveJob?, JobMachine.Work) {
        let handover = DelayedLeaveHandover(serverName: "example.org", delayID: "syd", delayTimeout: timeout, roomAlias: "room", identity: "id")
        var job: DelayedLeaveJob? = try JobMachine.newJob(handover, jobID: "J", now: now).get()
        JobMachine.apply(.participantConnected, to: &job, now: now)
        job?.lookup = nil
        let work = JobMachine.claimDueWork(&job, now: now, owner: "a", settings: settings).work
        return (job, try #require(work.first { $0.kind == .restart }))
    }

    @Test func aHugeRestartHintEndsTheRestartSequence() throws {
        var (job, work) = try Self.connectedJob(timeout: 3000)
        let notes = JobMachine.complete(
            &job, work: work, outcome: .delayedEvent(.retry(after: .max, reason: "429")), now: Self.now + 10, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(job == nil)
        #expect(notes.contains(.transition(JobTransition(event: .delayedEventTimedOut, from: .connected, to: .aborted))))
    }

    @Test func aHugeSendHintEndsTheJob() throws {
        var (job, _) = try Self.connectedJob(timeout: 3000)
        JobMachine.apply(.participantDisconnectedIntentionally, to: &job, now: Self.now + 100)
        let work = try #require(JobMachine.claimDueWork(&job, now: Self.now + 100, owner: "a", settings: Self.settings).work.first)
        #expect(work.kind == .send)
        let notes = JobMachine.complete(
            &job, work: work, outcome: .delayedEvent(.retry(after: .max, reason: "429")), now: Self.now + 110, random: FixedRandomSource(byte: 0), settings: Self.settings)
        #expect(job == nil)
        #expect(notes.contains(.done(reason: "gave up sending the delayed leave event")))
    }

    /// A record whose every time is at a bound still goes through every step of the machine.
    @Test(arguments: [Int64.max, Int64.min, 0, -1])
    func extremeStoredTimesNeverTrap(extreme: Int64) throws {
        var stored = DelayedLeaveJob(
            key: JobKey(room: "r", identity: "i"), jobID: "J", serverName: "s", delayID: "d", delayTimeout: extreme == 0 ? 1 : extreme / 1_000_000,
            restartedAt: extreme)
        stored.waitingTimerDue = extreme
        stored.restartDeadline = extreme
        stored.lookup = Activity(due: extreme, interval: extreme, sequenceStart: extreme, maxElapsed: extreme)
        stored.restart = Activity(due: extreme, interval: extreme, sequenceStart: nil, maxElapsed: extreme)
        stored.send = Activity(due: extreme, interval: extreme, sequenceStart: extreme, maxElapsed: extreme, claim: Claim(owner: "x", expires: extreme))
        // Times beyond RFC 3339's years do not survive a round trip through the record; the rest must.
        let parsed = (try? DelayedLeaveJob(record: stored.record())) ?? stored
        for now in [Self.now, Int64.max, Int64.min] {
            for state in [DelayedLeaveJob.State.waitingForInitialConnect, .connected, .disconnected] {
                var job: DelayedLeaveJob? = parsed
                job?.state = state
                _ = JobMachine.recover(parsed, now: now, newJobID: "N")
                _ = JobMachine.sendWindow(parsed, now: now)
                _ = job?.nextDue
                let claimed = JobMachine.claimDueWork(&job, now: now, owner: "a", settings: JobMachine.Settings(sanityInterval: .milliseconds(Int64.max)))
                for work in claimed.work {
                    var copy = job
                    for outcome in [
                        JobMachine.Outcome.delayedEvent(.success), .delayedEvent(.retry(after: .max, reason: "x")), .delayedEvent(.retry(after: nil, reason: "x")),
                        .presence(.present), .presence(.absent),
                    ] {
                        copy = job
                        _ = JobMachine.complete(&copy, work: work, outcome: outcome, now: now, random: FixedRandomSource(byte: 0xFF), settings: JobMachine.Settings(sanityInterval: .milliseconds(Int64.max)))
                        _ = copy.map { try? DelayedLeaveJob(record: $0.record()) }
                    }
                }
                for event in JobEvent.allCases {
                    var copy = job
                    JobMachine.apply(event, to: &copy, now: now)
                }
            }
        }
    }

    @Test func aCorruptHeartbeatIsNeitherFreshNorATrap() throws {
        let store = InMemoryJobStore()
        try store.writeHeartbeat(.min)
        let (_, scheduler) = DelayedLeaveJobsTests.subsystem(DelayedLeaveJobsTests.World(), store: store)
        // Recovery treats it as old (cold start) and must not trap on `now - heartbeat`.
        try scheduler.recoverIfColdStart()
        #expect(try store.newestHeartbeat() != .min)
    }

    // MARK: Stored records

    /// An unparsable record is left alone by webhooks and the scheduler; a new job for its key
    /// replaces it, with a warning.
    @Test func anUnparsableRecordIsOnlyReplacedByANewJob() throws {
        let store = InMemoryJobStore()
        let records = LogRecords()
        let world = DelayedLeaveJobsTests.World()
        let (plain, _) = DelayedLeaveJobsTests.subsystem(world, store: store)
        let jobs = DelayedLeaveJobs(dependencies: plain.dependencies, settings: plain.settings, logger: Logger(label: "test", factory: { _ in records }))
        let handover = DelayedLeaveJobsTests.handover("syd_new", timeout: 60_000)
        let key = JobKey(room: handover.roomAlias, identity: handover.identity)
        store.storeRaw(key, #"{"Params":{"DelayTimeout":"soon"}}"#)

        jobs.apply(.participantConnected, room: key.room, identity: key.identity)
        #expect(jobs.claimDueWork(limit: 4).isEmpty)
        guard case .failure? = try store.allRecords().first?.job else {
            Issue.record("webhooks and the scheduler must leave the record as it was")
            return
        }
        #expect(jobs.accept(handover) == nil)
        #expect(try store.update(key) { $0?.delayID } == "syd_new")
        #expect(records.entries.contains { $0.message == "Replacing an unparsable stored job" })
    }

    // MARK: Discovery caching

    @Test(arguments: [
        ([("Cache-Control", "max-age=99999999999999999999999999")], 48 * 3600),
        ([("Cache-Control", "max-age=9223372036854775807")], 48 * 3600),
        ([("Expires", "Fri, 31 Dec 9999 23:59:59 GMT")], 48 * 3600),
        ([("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")], 0),
    ] as [([(name: String, value: String)], Int64)])
    func hugeCacheLifetimesAreCut(headers: [(name: String, value: String)], seconds: Int64) {
        let lifetime = DiscoveryCachePolicy().wellKnownLifetime(OutboundResponse(status: 200, headers: HTTPHeaders(headers)), now: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(lifetime == .seconds(seconds))
    }

    @Test(arguments: [
        (300, 300), (Int(Int32.max), 48 * 3600), (Int(Int32.max) + 1, 0), (Int.max, 0), (-1, 0), (Int.min, 0),
    ] as [(Int, Int64)])
    func srvTTLsAreClamped(ttl: Int, seconds: Int64) {
        #expect(DiscoveryCachePolicy().srvLifetime(ttl: ttl) == .seconds(seconds))
    }

    @Test func aHugeSRVTTLIsResolvedWithoutATrap() throws {
        let srv = TableSRVResolver(["_matrix-fed._tcp.example.org": .records([SRVRecord(priority: 0, weight: 0, port: 443, target: "fed.example.org")], ttl: .max)])
        let http = ScriptedHTTPClient { _ throws(OutboundError) in OutboundResponse(status: 404) }
        let resolver = ServerResolver(http: http, srv: srv, clock: FixedClock(), random: FixedRandomSource(byte: 0))
        for _ in 0..<2 {
            let targets = try resolver.resolve(try #require(ServerName.parse("example.org")), deadline: Deadline(after: .seconds(10)))
            #expect(targets.map(\.connectHost) == ["fed.example.org"])
        }
        // TTL 2^63 − 1 means 0 (RFC 2181 §8): not cached, asked again.
        #expect(srv.lookups.count == 2)
    }

    // MARK: Request numbers

    @Test(arguments: [
        ("99999999999999999999999999", nil), ("9223372036854775808", nil), ("+5", 65537), ("0005", 5), (" 5", 65537),
    ] as [(String, Int?)])
    func hugeContentLengthsAreTooLarge(contentLength: String, expected: Int?) {
        #expect(Request.bodyReadLimit(contentLength: contentLength) == expected)
    }

    // MARK: The wall clock

    /// A clock that answers each call with the next of `instants` (the last repeats).
    final class SteppingClock: WallClock {
        private let instants: Mutex<[Date]>
        init(_ seconds: [Double]) { instants = Mutex(seconds.map { Date(timeIntervalSince1970: $0) }) }
        func now() -> Date {
            instants.withLock { list in list.count > 1 ? list.removeFirst() : list[0] }
        }
    }

    @Test func aClockSteppingBackDuringCreateRoomIsNoTrap() {
        let http = ScriptedHTTPClient { request throws(OutboundError) in
            if request.url.contains("/twirp/") {
                var writer = ProtobufWriter()
                writer.string(1, "RM_1")
                writer.uint(5, 1_699_999_990)
                return OutboundResponse(status: 200, body: writer.bytes)
            }
            return .json(200, #"{"sub":"@alice:full.example.com:8448"}"#)
        }
        // Issue time, then CreateRoom's start, then its end ten seconds earlier.
        let clock = SteppingClock([1_700_000_000, 1_700_000_000, 1_699_999_980])
        let service = AuthorizationService(
            configuration: Configuration(
                liveKitURL: "wss://sfu.example.com", apiKey: "devkey", apiSecret: "devsecret", accessPolicy: .servers(["full.example.com:8448"])),
            dependencies: .init(http: http, clock: clock, srv: TableSRVResolver([:]), random: FixedRandomSource(byte: 0), addressRules: .unrestricted),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let response = service.respond(to: Request(
            method: "POST", path: "/get_token", body: .bytes(Array(AuthorizationServiceTests.tokenBody().utf8)), remoteAddress: "127.0.0.1"))
        #expect(response.status == 200)
    }

    @Test func aClockFarInTheFutureStillSignsTokens() throws {
        let token = AccessToken.join(apiKey: "k", identity: "i", room: "r", issuedAt: Date(timeIntervalSince1970: 1e300))
        #expect(token.claims["exp"] == .integer(.max))
        #expect(try !token.signed(secret: "s").isEmpty)
    }
}
