import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

struct TrackedParticipantStoreTests {
    @Test func inMemory() throws {
        let store = InMemoryJobStore()
        try JobStoreConformance(store: store, secondConnection: store).runTrackedParticipantChecks()
    }

    /// A record that cannot be read is neither listed nor deleted by a nil; a new token replaces it.
    @Test(arguments: ["{not json", #"{"matrix_room_id":1}"#, #"{"matrix_room_id":"!r","matrix_user_id":"@u","livekit_room":"other","livekit_identity":"i","registered_at":"2026-09-10T12:00:00Z"}"#])
    func unreadableRecordsAreSkipped(record: String) throws {
        let store = InMemoryJobStore()
        let key = JobKey(room: "alias", identity: "i")
        store.storeRawParticipant(key, record)
        #expect(try store.trackedParticipants().isEmpty)
        #expect(try store.updateParticipant(key) { $0 } == nil)
        let fresh = JobStoreConformance.participant("i")
        try store.updateParticipant(key) { $0 = fresh }
        #expect(try store.trackedParticipants() == [fresh])
    }
}
