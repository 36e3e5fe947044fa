/// Percent-encoding of everything but the unreserved bytes `A–Z a–z 0–9 - . _ ~` (RFC 3986).
enum PercentEncoding {
    /// `spaceAsPlus`: `application/x-www-form-urlencoded`, as Go's `url.QueryEscape` writes query values.
    static func encode(_ value: String, spaceAsPlus: Bool = false) -> String {
        var output = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " ") where spaceAsPlus:
                output += "+"
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                output += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return output
    }
}
