import LKJWTLogic

/// LiveKit RoomService answers (protobuf wire format), read by the reader and by the client.
enum ProtobufFuzzing {
    static let target = FuzzTarget(
        name: "protobuf", summary: "ProtobufReader.fields; re-encoded fields read the same; CreateRoom/GetParticipant answers") { bytes in
            if let fields = ProtobufReader.fields(bytes) {
                let encoded = encode(fields)
                guard let again = ProtobufReader.fields(encoded) else {
                    invariant(false, "re-encoded message does not read")
                    return
                }
                invariant(again.count == fields.count, "re-encoded message has \(again.count) fields, not \(fields.count)")
                for (left, right) in zip(fields, again) {
                    invariant(left.field == right.field && left.value == right.value, "field \(left.field) changed by re-encoding")
                }
                invariant(encoded.count <= bytes.count, "canonical encoding is longer than the input")
            }
            let client = RoomServiceClient(
                liveKitURL: "wss://sfu.example.com", apiKey: "devkey", apiSecret: "devsecret",
                http: ScriptedHTTPClient { _ in OutboundResponse(status: 200, headers: [("Content-Type", "application/protobuf")], body: bytes) },
                clock: FixedClock())
            _ = try? client.createRoom(alias: "room")
            _ = client.participantPresence(room: "room", identity: "@alice:example.com:DEVICE")
        }

    /// The wire format with minimal varints.
    static func encode(_ fields: [(field: Int, value: ProtobufReader.Value)]) -> [UInt8] {
        var bytes: [UInt8] = []
        func varint(_ value: UInt64) {
            var remaining = value
            while remaining >= 0x80 {
                bytes.append(UInt8(remaining & 0x7F) | 0x80)
                remaining >>= 7
            }
            bytes.append(UInt8(remaining))
        }
        func fixed(_ value: UInt64, _ count: Int) {
            for index in 0..<count { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))) }
        }
        for (field, value) in fields {
            switch value {
            case .varint(let number):
                varint(UInt64(field) << 3)
                varint(number)
            case .fixed64(let number):
                varint(UInt64(field) << 3 | 1)
                fixed(number, 8)
            case .bytes(let content):
                varint(UInt64(field) << 3 | 2)
                varint(UInt64(content.count))
                bytes += content
            case .fixed32(let number):
                varint(UInt64(field) << 3 | 5)
                fixed(UInt64(number), 4)
            }
        }
        return bytes
    }
}
