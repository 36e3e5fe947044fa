import LKJWTLogic

/// Tracked-participant records and the sweep lease, as stored in SQLite or the Redis hash shared with
/// upstream (AS-MODE.md B4), and what the monitor decides on one: neither may trap, and whatever the
/// monitor writes must read back.
enum ParticipantRecordFuzzing {
    static let now: Int64 = 1_700_000_000_000

    static let target = FuzzTarget(
        name: "participant-record", summary: "TrackedParticipant(record:) and MembershipSweepLease(record:); round trips, decisions and claims on them") { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            if let lease = MembershipSweepLease(record: text) {
                let (claim, claimed) = MembershipSweepLease.claim(lease, owner: "fuzz", now: now, interval: 2_000, lease: 600_000, goneOwners: [])
                invariant((claim == .claimed) == (claimed != nil), "a claim without a lease to store, or the other way round")
                if let claimed { invariant(MembershipSweepLease(record: claimed.record()) == claimed, "a claimed lease does not read back") }
            }
            guard let participant = try? TrackedParticipant(record: text) else { return }
            let written = participant.record()
            invariant((try? TrackedParticipant(record: written)) == participant, "record round trip changed the participant: \(written.debugDescription)")
            _ = participant.tokenExpired(now: now)
            let members = Set(bytes.prefix(4).map { "@u\($0):example.org" } + [participant.matrixUserID].filter { _ in bytes.count % 2 == 0 })
            for room in [MembershipDecision.Room.joined(members), .serverLeft, .unknown(.notAllowedToLook), .unknown(.homeserverError("down"))] {
                var changed = participant
                switch MembershipDecision.action(for: participant, in: room) {
                case .none: break
                case .cancelRemoval: changed.pendingRemoval = nil
                case .remove(let removal): changed.pendingRemoval = removal
                }
                invariant((try? TrackedParticipant(record: changed.record())) == changed, "a decided participant does not read back")
            }
        }
}
