/// The stored form: upstream PR #235's JSON value (`matrix_room_id`, `matrix_user_id`, `livekit_room`,
/// `livekit_identity`, `registered_at` as RFC 3339 UTC; notes §4.4), plus `connected` and
/// `pending_removal`, which upstream keeps in memory only but every worker and host must see here.
/// Upstream ignores the extra members; its records read here as not connected.
extension TrackedParticipant {
    public struct RecordError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public func record() -> String {
        var members = [
            JSONMember("matrix_room_id", .string(matrixRoomID)),
            JSONMember("matrix_user_id", .string(matrixUserID)),
            JSONMember("livekit_room", .string(liveKitRoom)),
            JSONMember("livekit_identity", .string(liveKitIdentity)),
            JSONMember("registered_at", .string(RFC3339.format(milliseconds: registeredAt))),
            JSONMember("connected", .bool(connected)),
        ]
        if let pendingRemoval { members.append(JSONMember("pending_removal", .string(pendingRemoval.rawValue))) }
        return JSONValue.object(members).serialized()
    }

    /// A stored record is outside input (another version, upstream, an operator): every member is checked.
    public init(record: String) throws(RecordError) {
        guard let document = try? JSONParser.parse(Array(record.utf8)), case .object = document else {
            throw RecordError(description: "not a JSON object")
        }
        func string(_ name: String) throws(RecordError) -> String {
            guard let value = document[name]?.stringValue else { throw RecordError(description: "\(name) missing or not a string") }
            return value
        }
        matrixRoomID = try string("matrix_room_id")
        matrixUserID = try string("matrix_user_id")
        liveKitRoom = try string("livekit_room")
        liveKitIdentity = try string("livekit_identity")
        guard let registered = RFC3339.parse(try string("registered_at")) else {
            throw RecordError(description: "registered_at is not an RFC 3339 time")
        }
        registeredAt = registered
        switch document["connected"] {
        case nil, .null?: connected = false
        case .bool(let value)?: connected = value
        default: throw RecordError(description: "connected is not a boolean")
        }
        switch document["pending_removal"] {
        case nil, .null?: pendingRemoval = nil
        case .string(let name)?:
            guard let removal = Removal(rawValue: name) else { throw RecordError(description: "unknown pending_removal") }
            pendingRemoval = removal
        default: throw RecordError(description: "pending_removal is not a string")
        }
    }
}
