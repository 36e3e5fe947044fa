extension JSONValue {
    /// Compact JSON with members in their stored order. Strings are escaped the way Matrix canonical JSON
    /// escapes them (only `"`, `\` and control characters, lower-case hex), so for arrays of strings
    /// this output is already canonical.
    public func serialized() -> String {
        // Room for a token's claims or answer, so that it is not grown (copied) several times.
        var output = ""
        output.reserveCapacity(512)
        write(to: &output)
        return output
    }

    func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let literal): output += literal
        case .string(let value): JSONValue.writeString(value, to: &output)
        case .array(let items):
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += "," }
                item.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { output += "," }
                JSONValue.writeString(member.key, to: &output)
                output += ":"
                member.value.write(to: &output)
            }
            output += "}"
        }
    }

    static func writeString(_ value: String, to output: inout String) {
        output += "\""
        // Most strings (names, IDs, tokens) need no escape: appended whole, not scalar by scalar,
        // which was a tenth of a token request's CPU.
        // Scanned as contiguous bytes: through the UTF-8 view's iterator the scan was 2 % of a token
        // request's CPU (the JWT in the answer is long).
        let needsEscape: (UInt8) -> Bool = { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        let plain = value.utf8.withContiguousStorageIfAvailable { !$0.contains(where: needsEscape) }
            ?? !value.utf8.contains(where: needsEscape)
        if plain {
            output += value
            output += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\u{08}": output += "\\b"
            case "\u{09}": output += "\\t"
            case "\u{0A}": output += "\\n"
            case "\u{0C}": output += "\\f"
            case "\u{0D}": output += "\\r"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
