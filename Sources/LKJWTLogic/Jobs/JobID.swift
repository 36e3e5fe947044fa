/// Job IDs of contract §8.1: 16 bytes (8-byte big-endian Unix microseconds, then 8 random bytes)
/// in base32hex without padding, 26 characters that sort by creation time.
public enum JobID {
    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUV".utf8)

    public static func make(microseconds: Int64, random: any RandomSource) -> String {
        var bytes: [UInt8] = (0..<8).reversed().map { UInt8(truncatingIfNeeded: UInt64(bitPattern: microseconds) >> (UInt64($0) * 8)) }
        bytes += random.bytes(8)
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                output.append(alphabet[Int(buffer >> UInt32(bits) & 31)])
            }
        }
        if bits > 0 { output.append(alphabet[Int(buffer << UInt32(5 - bits) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }
}
