import Logging

/// The sweep and the check at `participant_joined` (AS-MODE.md B4, notes §4.3): presence of the
/// participants not known to be on the SFU, one `joined_members` per Matrix room, then the SFU calls.
/// A removal is recorded as pending before the SFU is asked, and cleared only when the SFU confirmed
/// it, so a failed call is retried by the next sweep.
extension MembershipMonitor {
    public struct SweepReport: Sendable, Equatable {
        public var tracked = 0
        public var rooms = 0
        public var removed = 0
        public var roomsDeleted = 0
        public var failed = 0
        public var forgotten = 0
    }

    /// One sweep over every tracked participant; the caller holds the sweep lease.
    @discardableResult
    func sweep() -> SweepReport {
        var report = SweepReport()
        let now = now
        let participants: [TrackedParticipant]
        do {
            participants = try store.trackedParticipants()
        } catch {
            logger.error("Could not read tracked participants for the membership sweep", metadata: ["err": .untrusted("\(error)")])
            return report
        }
        report.tracked = participants.count
        guard !participants.isEmpty else { return report }
        var watched: [TrackedParticipant] = []
        for participant in participants {
            guard let current = refreshPresence(participant, now: now) else {
                report.forgotten += 1
                continue
            }
            if current.connected || current.pendingRemoval != nil { watched.append(current) }
        }
        let rooms = Dictionary(grouping: watched, by: \.matrixRoomID)
        report.rooms = rooms.count
        for matrixRoom in rooms.keys.sorted() {
            enact(in: matrixRoom, on: rooms[matrixRoom] ?? [], room: membership(of: matrixRoom), by: .sweep, report: &report)
        }
        let level: Logger.Level = report.removed + report.roomsDeleted + report.failed > 0 ? .info : .debug
        logger.log(level: level, "Membership sweep finished", metadata: [
            "tracked": "\(report.tracked)", "rooms": "\(report.rooms)", "removed": "\(report.removed)", "roomsDeleted": "\(report.roomsDeleted)",
            "failed": "\(report.failed)", "forgotten": "\(report.forgotten)",
        ])
        return report
    }

    /// The check at `participant_joined`, for the participants whose webhook arrived here.
    func checkJoined(_ keys: [JobKey]) {
        var participants: [TrackedParticipant] = []
        for key in Set(keys) {
            do {
                if let participant = try store.updateParticipant(key, { $0 }), participant.connected { participants.append(participant) }
            } catch {
                logger.error("Could not read tracked participant", metadata: ["room": .untrusted(key.room), "lkId": .untrusted(key.identity), "err": .untrusted("\(error)")])
            }
        }
        var report = SweepReport()
        for (matrixRoom, members) in Dictionary(grouping: participants, by: \.matrixRoomID) {
            enact(in: matrixRoom, on: members, room: membership(of: matrixRoom), by: .participantJoined, report: &report)
        }
    }

    /// Asks the SFU about a participant not known to be on it; nil once it was forgotten (absent,
    /// token expired).
    private func refreshPresence(_ participant: TrackedParticipant, now: Int64) -> TrackedParticipant? {
        guard !participant.connected else { return participant }
        let key = participant.key
        do {
            switch dependencies.roomService.participantPresence(room: participant.liveKitRoom, identity: participant.liveKitIdentity) {
            case .present:
                return try store.updateParticipant(key) { stored -> TrackedParticipant? in
                    stored?.connected = true
                    return stored
                }
            case .absent:
                guard participant.canBeForgotten(now: now) else { return participant }
                // Re-checked inside the update: a new token or a webhook may have changed it meanwhile.
                return try store.updateParticipant(key) { stored -> TrackedParticipant? in
                    if stored?.canBeForgotten(now: now) == true { stored = nil }
                    return stored
                }
            case .unknown(let reason):
                logger.warning("Could not look up tracked participant on the SFU", metadata: [
                    "room": .untrusted(participant.liveKitRoom), "lkId": .untrusted(participant.liveKitIdentity), "err": .untrusted(reason),
                ])
                return participant
            }
        } catch {
            logger.error("Could not update tracked participant", metadata: ["room": .untrusted(key.room), "lkId": .untrusted(key.identity), "err": .untrusted("\(error)")])
            return participant
        }
    }

    /// The homeserver's view of the room; the fail-open cases are logged here.
    private func membership(of matrixRoom: String) -> MembershipDecision.Room {
        let homeserver = dependencies.homeserver
        let room = MembershipDecision.room(homeserver.joinedMembers(of: matrixRoom)) { homeserver.isOwnServerJoined(matrixRoom) }
        switch room {
        case .unknown(.homeserverError(let reason)):
            logger.warning("Could not check the Matrix room's members; nobody is removed from its call", metadata: [
                "matrixRoom": .untrusted(matrixRoom), "err": .untrusted(reason),
            ])
        case .unknown(.notAllowedToLook):
            logger.error(
                "The homeserver does not show this application service the members of a room it is in; check that the registration's users namespace covers the homeserver's local users (and no remote ones). Nobody is removed from this call",
                metadata: ["matrixRoom": .untrusted(matrixRoom)])
        case .joined, .serverLeft:
            break
        }
        return room
    }

    /// What found a removal, for the operator's log.
    enum Check: String {
        case sweep
        case participantJoined = "participant_joined"
    }

    private func enact(in matrixRoom: String, on participants: [TrackedParticipant], room: MembershipDecision.Room, by check: Check, report: inout SweepReport) {
        var roomDeletions: [String: [TrackedParticipant]] = [:]
        for participant in participants.sorted(by: { $0.liveKitIdentity < $1.liveKitIdentity }) {
            switch MembershipDecision.action(for: participant, in: room) {
            case .none:
                continue
            case .cancelRemoval:
                _ = try? store.updateParticipant(participant.key) { $0?.pendingRemoval = nil }
                logger.info("Removal from the call cancelled: the user is joined to the Matrix room again", metadata: metadata(participant))
            case .remove(let removal):
                guard markPending(participant, removal) else { continue }
                dropDelayedLeaveJob(of: participant)
                switch removal {
                case .participant:
                    let outcome = dependencies.roomService.removeParticipant(room: participant.liveKitRoom, identity: participant.liveKitIdentity)
                    finish([participant], removal: removal, outcome: outcome, by: check, report: &report)
                case .room:
                    roomDeletions[participant.liveKitRoom, default: []].append(participant)
                }
            }
        }
        for alias in roomDeletions.keys.sorted() {
            let members = roomDeletions[alias] ?? []
            let outcome = dependencies.roomService.deleteRoom(alias)
            if outcome != .confirmed && outcome != .alreadyGone {
                finish(members, removal: .room, outcome: outcome, by: check, report: &report)
                continue
            }
            report.roomsDeleted += 1
            logger.info("Deleted the call of a Matrix room this homeserver left", metadata: [
                "matrixRoom": .untrusted(matrixRoom), "room": .untrusted(alias), "participants": "\(members.count)",
            ])
            finish(members, removal: .room, outcome: outcome, by: check, report: &report)
        }
    }

    /// Records the removal before the SFU is asked; false if the participant is gone meanwhile.
    private func markPending(_ participant: TrackedParticipant, _ removal: TrackedParticipant.Removal) -> Bool {
        do {
            return try store.updateParticipant(participant.key) { stored -> Bool in
                guard stored != nil else { return false }
                stored?.pendingRemoval = removal
                return true
            }
        } catch {
            logger.error("Could not record a removal; it is decided again by the next sweep", metadata: metadata(participant).merging(["err": .untrusted("\(error)")]) { $1 })
            return false
        }
    }

    /// A non-member can no longer send its leave event: the job goes without sending (notes §3.5).
    private func dropDelayedLeaveJob(of participant: TrackedParticipant) {
        do {
            guard let key = try store.key(room: participant.liveKitRoom, identity: participant.liveKitIdentity) else { return }
            let dropped = try store.update(key) { job -> String? in
                defer { job = nil }
                return job?.jobID
            }
            if let dropped {
                logger.info("Delayed leave job dropped without sending: the member was removed", metadata: metadata(participant).merging(["jobId": .untrusted(dropped)]) { $1 })
            }
        } catch {
            logger.error("Could not drop the removed member's delayed leave job", metadata: metadata(participant).merging(["err": .untrusted("\(error)")]) { $1 })
        }
    }

    private func finish(
        _ participants: [TrackedParticipant], removal: TrackedParticipant.Removal, outcome: RoomServiceClient.RemovalOutcome, by check: Check,
        report: inout SweepReport
    ) {
        for participant in participants {
            switch outcome {
            case .confirmed, .alreadyGone:
                do {
                    try store.updateParticipant(participant.key) { stored in
                        guard stored?.pendingRemoval == removal else { return }
                        stored?.pendingRemoval = nil
                        stored?.connected = false
                    }
                } catch {
                    logger.error("Could not record a confirmed removal", metadata: metadata(participant).merging(["err": .untrusted("\(error)")]) { $1 })
                }
                report.removed += 1
                logger.info("Removed participant from the call", metadata: metadata(participant).merging([
                    "reason": .string(MembershipDecision.reason(removal)), "sfu": .string(outcome == .confirmed ? "removed" : "already gone"),
                    "check": .string(check.rawValue),
                ]) { $1 })
            case .failed(let reason):
                report.failed += 1
                logger.error("Could not remove participant from the call; the next sweep tries again", metadata: metadata(participant).merging([
                    "reason": .string(MembershipDecision.reason(removal)), "err": .untrusted(reason), "check": .string(check.rawValue),
                ]) { $1 })
            }
        }
    }

    private func metadata(_ participant: TrackedParticipant) -> Logger.Metadata {
        [
            "matrixId": .untrusted(participant.matrixUserID), "matrixRoom": .untrusted(participant.matrixRoomID),
            "room": .untrusted(participant.liveKitRoom), "lkId": .untrusted(participant.liveKitIdentity),
        ]
    }
}
