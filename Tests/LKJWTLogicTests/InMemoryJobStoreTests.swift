import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

struct InMemoryJobStoreTests {
    @Test func conformsToTheStoreContract() throws {
        let store = InMemoryJobStore()
        try JobStoreConformance(store: store, secondConnection: store).runJobChecks()
    }

    @Test func unparsableRecordsAreListedForRecovery() throws {
        let store = InMemoryJobStore()
        store.storeRaw(JobKey(room: "r", identity: "i"), "{not json")
        let records = try store.allRecords()
        #expect(records.count == 1)
        guard case .failure = records.first?.job else {
            Issue.record("an unparsable record must be reported as such")
            return
        }
        try JobStoreConformance(store: store, secondConnection: store).unparsableRecordIsSkippedNotOverwritten(JobKey(room: "r", identity: "i"))
    }
}
