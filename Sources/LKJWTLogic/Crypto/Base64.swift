/// The base64 variants the contract needs: standard with and without padding (Matrix "unpadded base64",
/// webhook digests) and base64url without padding (JWS segments).
public enum Base64 {
    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func standard(_ bytes: [UInt8], padded: Bool) -> String {
        encode(bytes, alphabet: standardAlphabet, padded: padded)
    }

    public static func url(_ bytes: [UInt8]) -> String {
        encode(bytes, alphabet: urlAlphabet, padded: false)
    }

    /// Base64url of `bytes` appended to `output`, for texts built as bytes (JWS).
    static func appendURL(_ bytes: [UInt8], to output: inout [UInt8]) {
        append(bytes, alphabet: urlAlphabet, padded: false, to: &output)
    }

    /// Decodes base64url without padding (as JWS uses); nil for any character outside the alphabet.
    static func decodeURL(_ text: String) -> [UInt8]? {
        decode(text, alphabet: urlAlphabet)
    }

    private static func encode(_ bytes: [UInt8], alphabet: [UInt8], padded: Bool) -> String {
        var output: [UInt8] = []
        append(bytes, alphabet: alphabet, padded: padded, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    private static func append(_ bytes: [UInt8], alphabet: [UInt8], padded: Bool, to output: inout [UInt8]) {
        output.reserveCapacity(output.count + (bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            // Appended one by one: `+= [a, b, c, d]` allocated an array for every three input bytes.
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let remaining = bytes.count - index
        if remaining == 1 {
            let chunk = UInt32(bytes[index]) << 16
            output += [alphabet[Int(chunk >> 18 & 63)], alphabet[Int(chunk >> 12 & 63)]]
            if padded { output += Array("==".utf8) }
        } else if remaining == 2 {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output += [alphabet[Int(chunk >> 18 & 63)], alphabet[Int(chunk >> 12 & 63)], alphabet[Int(chunk >> 6 & 63)]]
            if padded { output += Array("=".utf8) }
        }
    }

    private static func decode(_ text: String, alphabet: [UInt8]) -> [UInt8]? {
        var table = [Int8](repeating: -1, count: 256)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = Int8(value) }
        let input = Array(text.utf8)
        guard input.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for character in input {
            let value = table[Int(character)]
            guard value >= 0 else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return output
    }
}
