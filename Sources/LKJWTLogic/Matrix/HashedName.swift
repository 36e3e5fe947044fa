/// The derivation H(s1, …, sn) of contract §4: unpadded base64 of SHA-256 over the canonical JSON
/// array of the inputs. It names LiveKit rooms (`[room_id, slot_id]`) and identities
/// (`[user_id, device_id, member_id]`).
public enum HashedName {
    static func derive(_ parts: [String]) -> String {
        let canonical = CanonicalJSON.encode(.array(parts.map(JSONValue.string)))
        return Base64.standard(Digest.sha256(Array(canonical.utf8)), padded: false)
    }

    static func roomAlias(roomID: String, slotID: String) -> String {
        derive([roomID, slotID])
    }

    /// `/sfu/get` predates slots: every call of a room used the fixed slot `m.call#ROOM`.
    static func legacyRoomAlias(roomID: String) -> String {
        derive([roomID, "m.call#ROOM"])
    }

    public static func identity(userID: String, deviceID: String, memberID: String) -> String {
        derive([userID, deviceID, memberID])
    }

    /// The legacy identity is not hashed.
    static func legacyIdentity(userID: String, deviceID: String) -> String {
        userID + ":" + deviceID
    }
}
