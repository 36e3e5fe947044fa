/// The parts of LiveKit's `WebhookEvent` the job state machine needs (contract §7.1 step 6); which job
/// event each one is (§7.2) is the jobs' to say (`jobEvent`).
public struct WebhookEvent: Sendable, Equatable {
    public var event: String
    /// `room.name`: the LiveKit room alias.
    public var room: String
    public var participantIdentity: String
    /// `participant.disconnectReason`; nil when absent or a name this build does not know.
    public var disconnectReason: DisconnectReason?

    /// Reads the body as LiveKit's protojson decoder would; nil when it is not JSON, not an object, or a
    /// field used here has the wrong type (protojson rejects such an event as a whole).
    public static func parse(_ body: [UInt8]) -> WebhookEvent? {
        guard let document = try? JSONParser.parse(body), case .object = document else { return nil }
        return try? WebhookEvent(document)
    }
}

extension WebhookEvent {
    // In an extension so that the memberwise initialiser stays available.
    fileprivate init(_ document: JSONValue) throws(ProtoJSONObject.Invalid) {
        let root = try ProtoJSONObject(document)
        // A missing `room` or `participant` reads as empty, so the event matches no job (DIFF-11).
        let participant = try ProtoJSONObject(root.field("participant"))
        event = try root.string("event")
        room = try ProtoJSONObject(root.field("room")).string("name")
        participantIdentity = try participant.string("identity")
        disconnectReason = try DisconnectReason(protoJSON: participant.field("disconnectReason", "disconnect_reason"))
    }

    /// LiveKit's `DisconnectReason` enum. Held as its number because proto3 enums are open: a newer SFU
    /// may send values this list does not name.
    public struct DisconnectReason: RawRepresentable, Sendable, Equatable, CustomStringConvertible {
        public let rawValue: Int32

        public init(rawValue: Int32) {
            self.rawValue = rawValue
        }

        /// Index = enum number, as in livekit_models.proto.
        private static let names = [
            "UNKNOWN_REASON", "CLIENT_INITIATED", "DUPLICATE_IDENTITY", "SERVER_SHUTDOWN", "PARTICIPANT_REMOVED",
            "ROOM_DELETED", "STATE_MISMATCH", "JOIN_FAILURE", "MIGRATION", "SIGNAL_CLOSE", "ROOM_CLOSED",
            "USER_UNAVAILABLE", "USER_REJECTED", "SIP_TRUNK_FAILURE", "CONNECTION_TIMEOUT", "MEDIA_FAILURE",
        ]

        static let unknownReason = DisconnectReason(rawValue: 0)
        static let clientInitiated = DisconnectReason(rawValue: 1)

        /// The only reason that means the user hung up on purpose.
        var isClientInitiated: Bool { self == .clientInitiated }

        public var description: String {
            Self.names.indices.contains(Int(rawValue)) ? Self.names[Int(rawValue)] : String(rawValue)
        }

        /// A name, an integer, or an integer in a string; unknown names read as unset, as protojson does
        /// when told to discard unknown values.
        fileprivate init?(protoJSON value: JSONValue?) throws(ProtoJSONObject.Invalid) {
            switch value {
            case nil:
                return nil
            case .string(let text)?:
                if let index = Self.names.firstIndex(of: text) {
                    rawValue = Int32(index)
                } else if let number = Int32(text) {
                    rawValue = number
                } else {
                    return nil
                }
            case .number(let literal)?:
                guard let number = Int32(literal) else { throw ProtoJSONObject.Invalid() }
                rawValue = number
            default:
                throw ProtoJSONObject.Invalid()
            }
        }
    }
}

/// One object of a proto-JSON document: a field may be spelled in lowerCamelCase or snake_case but be
/// given only once, `null` means unset, and unknown members are ignored.
fileprivate struct ProtoJSONObject {
    struct Invalid: Error {}

    private let members: [JSONMember]

    /// Absent or `null` reads as an empty message.
    init(_ value: JSONValue?) throws(Invalid) {
        switch value {
        case nil, .null?: members = []
        case .object(let members)?: self.members = members
        default: throw Invalid()
        }
    }

    /// The value under any of the field's names; nil when absent or `null`.
    func field(_ names: String...) throws(Invalid) -> JSONValue? {
        let matches = members.filter { names.contains($0.key) }
        guard matches.count <= 1 else { throw Invalid() }
        guard let value = matches.first?.value, value != .null else { return nil }
        return value
    }

    /// A string field; absent reads as "".
    func string(_ name: String) throws(Invalid) -> String {
        switch try field(name) {
        case nil: return ""
        case .string(let text)?: return text
        default: throw Invalid()
        }
    }
}
