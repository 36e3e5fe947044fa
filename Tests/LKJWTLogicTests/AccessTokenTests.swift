import FoundationEssentials
import Testing

@testable import LKJWTLogic

struct AccessTokenTests {
    let issueTime = Date(timeIntervalSince1970: 1_700_000_000)

    /// Contract §6.1 worked example, byte for byte.
    @Test func joinTokenMatchesTheContractVector() throws {
        let token = AccessToken.join(
            apiKey: "devkey", identity: "J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU",
            room: "O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc", canPublish: true, canUpdateOwnMetadata: true, issuedAt: issueTime)
        #expect(token.claims.serialized() == #"{"iss":"devkey","sub":"J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU","exp":1700003600,"nbf":1700000000,"iat":1700000000,"identity":"J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU","video":{"roomJoin":true,"room":"O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc","canPublish":true,"canSubscribe":true,"canUpdateOwnMetadata":true}}"#)
        #expect(try token.signed(secret: "devsecret") == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZXZrZXkiLCJzdWIiOiJKK1Q0NXRHcnV4YytIclVPcUpKbHlRU1YzM203MjhDbWU0K3Z0OC9TV3JVIiwiZXhwIjoxNzAwMDAzNjAwLCJuYmYiOjE3MDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwiaWRlbnRpdHkiOiJKK1Q0NXRHcnV4YytIclVPcUpKbHlRU1YzM203MjhDbWU0K3Z0OC9TV3JVIiwidmlkZW8iOnsicm9vbUpvaW4iOnRydWUsInJvb20iOiJPODQzN1czK2ptek1Wam9JUDN0TndibStYeEhRazJpS3BPQTdhcXczcVNjIiwiY2FuUHVibGlzaCI6dHJ1ZSwiY2FuU3Vic2NyaWJlIjp0cnVlLCJjYW5VcGRhdGVPd25NZXRhZGF0YSI6dHJ1ZX19.-_gPpeNryfTlNOa5Tbz6Od7RIlrADJZXFmHaswNCVp4")
    }

    /// Contract §6.2: server API tokens for CreateRoom and GetParticipant.
    @Test func serverTokensMatchTheContractVectors() throws {
        let create = AccessToken.server(apiKey: "devkey", grant: .roomCreate, issuedAt: issueTime)
        #expect(create.claims.serialized() == #"{"iss":"devkey","exp":1700021600,"nbf":1700000000,"iat":1700000000,"video":{"roomCreate":true}}"#)
        #expect(try create.signed(secret: "devsecret").split(separator: ".").last == "ZWtmkJ8i3JMij1ive_pVanMjcAX-AcYJ8tAYAZnRnPk")

        let admin = AccessToken.server(apiKey: "devkey", grant: .roomAdmin(room: "O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"), issuedAt: issueTime)
        #expect(admin.claims.serialized() == #"{"iss":"devkey","exp":1700021600,"nbf":1700000000,"iat":1700000000,"video":{"roomAdmin":true,"room":"O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"}}"#)
        #expect(try admin.signed(secret: "devsecret").split(separator: ".").last == "TKeiT1eqqJ4sbdXhjv5Jttes-NZsgmd31IILt2CoZSI")
    }

    /// §6.1 rev. 2: restricted users do not publish, and metadata updates need the operator's switch.
    @Test func grantsFollowTheCallersRights() {
        let token = AccessToken.join(apiKey: "k", identity: "i", room: "r", canPublish: false, canUpdateOwnMetadata: false, issuedAt: issueTime)
        #expect(token.claims["video"]?.serialized() == #"{"roomJoin":true,"room":"r","canPublish":false,"canSubscribe":true,"canUpdateOwnMetadata":false}"#)
    }

    @Test func fractionalIssueTimesAreTruncated() {
        let token = AccessToken.join(apiKey: "k", identity: "i", room: "r", canPublish: true, canUpdateOwnMetadata: false, issuedAt: Date(timeIntervalSince1970: 1_700_000_000.999))
        #expect(token.issuedAt == 1_700_000_000)
    }

    @Test func emptyKeyOrSecretCannotSign() {
        #expect(throws: AccessToken.SigningError.self) { try AccessToken.join(apiKey: "", identity: "i", room: "r", canPublish: true, canUpdateOwnMetadata: false, issuedAt: issueTime).signed(secret: "s") }
        #expect(throws: AccessToken.SigningError.self) { try AccessToken.join(apiKey: "k", identity: "i", room: "r", canPublish: true, canUpdateOwnMetadata: false, issuedAt: issueTime).signed(secret: "") }
    }

    @Test func joinGrantNeverAllowsRoomCreation() {
        #expect(!VideoGrant.join(room: "r", canPublish: true, canUpdateOwnMetadata: true).members.contains { $0.key == "roomCreate" || $0.key == "roomAdmin" })
    }
}
