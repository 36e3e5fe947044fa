import LKJWTTestSupport
import Logging
import Testing

@testable import LKJWTLogic

/// Contract §13.4 / §8.8 rev. 2: at most 32 live jobs per user, 1 000 per server admitted through `*`.
struct JobQuotaTests {
    static func handover(owner: String, index: Int, server: String = "example.org", quota: JobQuota) -> DelayedLeaveHandover {
        DelayedLeaveHandover(
            serverName: server, ownerUserID: owner, quota: quota, delayID: "syd_\(index)", delayTimeout: 60_000, roomAlias: "room-\(index)",
            identity: "identity-\(owner)-\(index)")
    }

    @Test func theThirtyThirdJobOfAUserIsRefusedAndReplacementsStillWork() throws {
        let store = InMemoryJobStore()
        let (jobs, _) = DelayedLeaveJobsTests.subsystem(DelayedLeaveJobsTests.World(), store: store)
        let quota = JobQuota.standard(serverAdmittedByWildcard: false)
        for index in 0..<32 {
            #expect(jobs.accept(Self.handover(owner: "@alice:example.org", index: index, quota: quota)) == nil)
        }
        #expect(jobs.accept(Self.handover(owner: "@alice:example.org", index: 32, quota: quota)) == .tooManyDelayedLeaveEvents)
        #expect(try store.allRecords().count == 32, "no job written")
        // The same member again replaces its job; another user is not affected.
        #expect(jobs.accept(Self.handover(owner: "@alice:example.org", index: 5, quota: quota)) == nil)
        #expect(jobs.accept(Self.handover(owner: "@bob:example.org", index: 0, quota: quota)) == nil)
        #expect(try store.allRecords().count == 33)
        let refusal = MatrixError.tooManyDelayedLeaveEvents
        #expect((refusal.status, refusal.errcode, refusal.message) == (429, "M_LIMIT_EXCEEDED", "Too many delayed leave events"))
        #expect(Response(status: 429).status.line == "429 Too Many Requests")
    }

    @Test func aWildcardServerIsCappedAtAThousandJobs() throws {
        let store = InMemoryJobStore()
        let (jobs, _) = DelayedLeaveJobsTests.subsystem(DelayedLeaveJobsTests.World(), store: store)
        let wildcard = JobQuota.standard(serverAdmittedByWildcard: true)
        #expect(wildcard == JobQuota(perUser: 32, perServer: 1000))
        for index in 0..<1000 {
            #expect(jobs.accept(Self.handover(owner: "@user\(index / 30):busy.example", index: index, server: "busy.example", quota: wildcard)) == nil)
        }
        #expect(jobs.accept(Self.handover(owner: "@late:busy.example", index: 1000, server: "busy.example", quota: wildcard)) == .tooManyDelayedLeaveEvents)
        #expect(jobs.accept(Self.handover(owner: "@late:quiet.example", index: 1001, server: "quiet.example", quota: wildcard)) == nil)
        // Listed explicitly: no per-server cap.
        let listed = JobQuota.standard(serverAdmittedByWildcard: false)
        #expect(jobs.accept(Self.handover(owner: "@late:busy.example", index: 1002, server: "busy.example", quota: listed)) == nil)
    }

    /// The service hands the verified user and the cap of its access policy to the jobs.
    @Test(arguments: [(AccessPolicy.everyone, Optional(1000)), (.servers([AuthorizationServiceTests.fullServer]), nil)])
    func theQuotaFollowsHowTheServerWasAdmitted(policy: AccessPolicy, perServer: Int?) throws {
        let delegation = AuthorizationServiceTests.RecordingDelegation(resolvable: true)
        let http = ScriptedHTTPClient { request throws(OutboundError) in
            request.url.contains("/twirp/") ? OutboundResponse(status: 200) : .json(200, #"{"sub":"@alice:\#(AuthorizationServiceTests.fullServer)"}"#)
        }
        let service = AuthorizationService(
            configuration: Configuration(liveKitURL: "wss://sfu.example.com", apiKey: "k", apiSecret: "s", accessPolicy: policy),
            dependencies: .init(
                http: http, clock: FixedClock(), srv: TableSRVResolver([:]), random: FixedRandomSource(byte: 0), delegation: delegation,
                addressRules: .unrestricted),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        for path in ["/get_token", "/delegate_delayed_leave"] {
            let body = AuthorizationServiceTests.tokenBody(extra: #","delay_id":"syd_1","delay_timeout":8000"#)
            #expect(service.respond(to: Request(method: "POST", path: path, body: .bytes(Array(body.utf8)))).status == 200)
        }
        let handovers = delegation.accepted.withLock { $0 }
        #expect(handovers.count == 2)
        for handover in handovers {
            #expect(handover.ownerUserID == "@alice:\(AuthorizationServiceTests.fullServer)")
            #expect(handover.quota == JobQuota(perUser: 32, perServer: perServer))
        }
    }

    /// A refusal reaches the client as the Matrix error with CORS headers.
    @Test func aRefusalIsA429MatrixErrorWithCORS() throws {
        final class FullDelegation: DelayedLeaveDelegation {
            func clientServerAPIBaseURL(for serverName: String) -> String? { "https://cs.example.com" }
            func accept(_ handover: DelayedLeaveHandover) -> DelayedLeaveRefusal? { .tooManyDelayedLeaveEvents }
            func apply(_ event: JobEvent, room: String, identity: String) {}
        }
        let harness = AuthorizationServiceTests.Harness(delegation: FullDelegation())
        let response = harness.post("/delegate_delayed_leave", AuthorizationServiceTests.tokenBody(extra: #","delay_id":"syd_1","delay_timeout":8000"#))
        #expect(response.status == 429)
        #expect(response.bodyText == #"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many delayed leave events"}"# + "\n")
        #expect(response.headers["Access-Control-Allow-Origin"] == "*")
    }
}
