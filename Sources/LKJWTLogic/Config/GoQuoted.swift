extension String {
    /// The string as Go's `%q` verb (`strconv.Quote`) renders it. The §2.3 error texts embed operator
    /// input this way, so stray quotes, newlines and invisible characters become visible.
    public var goQuoted: String {
        var quoted = "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\u{07}": quoted += "\\a"
            case "\u{08}": quoted += "\\b"
            case "\u{0C}": quoted += "\\f"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case "\u{0B}": quoted += "\\v"
            default:
                if scalar.isGoPrintable {
                    quoted.unicodeScalars.append(scalar)
                } else if scalar.value < 0x80 {
                    quoted += "\\x" + Self.lowercaseHex(scalar.value, digits: 2)
                } else if scalar.value < 0x1_0000 {
                    quoted += "\\u" + Self.lowercaseHex(scalar.value, digits: 4)
                } else {
                    quoted += "\\U" + Self.lowercaseHex(scalar.value, digits: 8)
                }
            }
        }
        return quoted + "\""
    }

    private static func lowercaseHex(_ value: UInt32, digits: Int) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: Swift.max(0, digits - hex.count)) + hex
    }
}

extension Unicode.Scalar {
    /// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
    /// Other spaces, controls and format characters get escaped.
    fileprivate var isGoPrintable: Bool {
        if self == " " { return true }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark,
             .decimalNumber, .letterNumber, .otherNumber,
             .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation,
             .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return true
        default:
            return false
        }
    }
}
