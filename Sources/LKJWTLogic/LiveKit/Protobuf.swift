/// The few protobuf messages of LiveKit's RoomService we exchange are tiny; this writes and reads
/// their wire format without pulling in a protobuf runtime.
public struct ProtobufWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func string(_ field: Int, _ value: String) {
        tag(field, wireType: 2)
        varint(UInt64(value.utf8.count))
        bytes += value.utf8
    }

    /// Proto3 omits default values, so zero is not written.
    mutating func uint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, wireType: 0)
        varint(value)
    }

    private mutating func tag(_ field: Int, wireType: UInt64) {
        varint(UInt64(field) << 3 | wireType)
    }

    private mutating func varint(_ value: UInt64) {
        var remaining = value
        while remaining >= 0x80 {
            bytes.append(UInt8(remaining & 0x7F) | 0x80)
            remaining >>= 7
        }
        bytes.append(UInt8(remaining))
    }
}

/// Reads top-level fields; nil from `fields` means the bytes are not a valid message.
public enum ProtobufReader {
    public enum Value: Sendable, Equatable {
        case varint(UInt64)
        case bytes([UInt8])
        case fixed64(UInt64)
        case fixed32(UInt32)
    }

    public static func fields(_ bytes: [UInt8]) -> [(field: Int, value: Value)]? {
        var result: [(Int, Value)] = []
        var position = 0

        func readVarint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < bytes.count, shift < 64 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        func readFixed(_ count: Int) -> UInt64? {
            guard position + count <= bytes.count else { return nil }
            var value: UInt64 = 0
            for index in (0..<count).reversed() { value = value << 8 | UInt64(bytes[position + index]) }
            position += count
            return value
        }

        while position < bytes.count {
            guard let key = readVarint(), key >> 3 > 0 else { return nil }
            let field = Int(key >> 3)
            switch key & 7 {
            case 0:
                guard let value = readVarint() else { return nil }
                result.append((field, .varint(value)))
            case 1:
                guard let value = readFixed(8) else { return nil }
                result.append((field, .fixed64(value)))
            case 2:
                guard let length = readVarint(), length <= UInt64(bytes.count - position) else { return nil }
                result.append((field, .bytes(Array(bytes[position..<position + Int(length)]))))
                position += Int(length)
            case 5:
                guard let value = readFixed(4) else { return nil }
                result.append((field, .fixed32(UInt32(value))))
            default:
                return nil
            }
        }
        return result
    }
}
