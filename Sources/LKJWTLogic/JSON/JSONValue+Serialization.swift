extension JSONValue {
    /// Compact JSON with members in their stored order. Strings are escaped the way Matrix canonical JSON
    /// escapes them (only `"`, `\` and control characters, lower-case hex), so for arrays of strings
    /// this output is already canonical.
    public func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }

    /// `serialized()` as UTF-8 bytes, with `terminator` after it (an answer body's newline). Written
    /// as bytes: appending to a `String` checks and updates its encoding flags at every piece, which
    /// showed in the profiles of token requests (claims and answer).
    public func serializedBytes(terminator: String = "") -> [UInt8] {
        // Room for a token's claims or answer, so that it is not grown (copied) several times.
        var output: [UInt8] = []
        output.reserveCapacity(512)
        write(to: &output)
        output += terminator.utf8
        return output
    }

    func write(to output: inout [UInt8]) {
        switch self {
        case .null: output += "null".utf8
        case .bool(let value): output += (value ? "true" : "false").utf8
        case .number(let literal): output += literal.utf8
        case .string(let value): JSONValue.writeString(value, to: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                item.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                member.value.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func writeString(_ value: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        defer { output.append(UInt8(ascii: "\"")) }
        // Most strings (names, IDs, tokens) need no escape: appended whole, not scalar by scalar,
        // which was a tenth of a token request's CPU.
        // Scanned as contiguous bytes: through the UTF-8 view's iterator the scan was 2 % of a token
        // request's CPU (the JWT in the answer is long).
        let needsEscape: (UInt8) -> Bool = { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        let plain = value.utf8.withContiguousStorageIfAvailable { !$0.contains(where: needsEscape) }
            ?? !value.utf8.contains(where: needsEscape)
        if plain {
            output += value.utf8
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += "\\\"".utf8
            case UInt8(ascii: "\\"): output += "\\\\".utf8
            case 0x08: output += "\\b".utf8
            case 0x09: output += "\\t".utf8
            case 0x0A: output += "\\n".utf8
            case 0x0C: output += "\\f".utf8
            case 0x0D: output += "\\r".utf8
            case 0x00...0x1F:
                output += "\\u00".utf8
                output.append(JSONValue.hexDigits[Int(byte >> 4)])
                output.append(JSONValue.hexDigits[Int(byte & 0xF)])
            // Every other byte, UTF-8 sequences included, is copied as it is.
            default: output.append(byte)
            }
        }
    }
}
