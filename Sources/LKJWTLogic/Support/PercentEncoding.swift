/// Percent-encoding of everything but the unreserved bytes `A–Z a–z 0–9 - . _ ~` (RFC 3986).
enum PercentEncoding {
    /// `spaceAsPlus`: `application/x-www-form-urlencoded`, as Go's `url.QueryEscape` writes query values.
    static func encode(_ value: String, spaceAsPlus: Bool = false) -> String {
        // Built as bytes and decoded once: appending scalar by scalar to a String was 1 % of a token
        // request's CPU (the userinfo URL carries the access token).
        let hexDigits: StaticString = "0123456789ABCDEF"
        var output: [UInt8] = []
        output.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(byte)
            case UInt8(ascii: " ") where spaceAsPlus:
                output.append(UInt8(ascii: "+"))
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits.utf8Start[Int(byte >> 4)])
                output.append(hexDigits.utf8Start[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
