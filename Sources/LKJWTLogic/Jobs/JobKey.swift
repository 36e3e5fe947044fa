/// A job's identity: the LiveKit room and the participant identity it watches (contract §8.1).
/// At most one job exists per key.
public struct JobKey: Hashable, Sendable, CustomStringConvertible {
    public let room: String
    public let identity: String

    public init(room: String, identity: String) {
        self.room = room
        self.identity = identity
    }

    /// The stored name: canonical JSON `[room, identity]`, as upstream names its Redis hash fields (§8.9).
    public var storageName: String {
        CanonicalJSON.encode(.array([.string(room), .string(identity)]))
    }

    public init?(storageName: String) {
        guard case .array(let items)? = try? JSONParser.parse(storageName), items.count == 2,
            let room = items[0].stringValue, let identity = items[1].stringValue
        else { return nil }
        self.init(room: room, identity: identity)
    }

    public var description: String { storageName }
}
