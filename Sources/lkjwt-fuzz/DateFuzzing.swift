import FoundationEssentials
import Glibc
import LKJWTLogic

/// HTTP dates (`Expires`, `Retry-After`) and RFC 3339 (`RestartedAt` of stored records).
enum DateFuzzing {
    static let httpDate = FuzzTarget(
        name: "http-date", summary: "HTTPDate.parse; a parsed date written as IMF-fixdate parses to the same instant") { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            guard let date = HTTPDate.parse(text) else { return }
            let seconds = date.timeIntervalSince1970
            invariant(seconds.isFinite && seconds.rounded() == seconds, "\(text.debugDescription) parsed to \(seconds)")
            guard let written = imfFixdate(Int64(seconds)) else { return }
            invariant(HTTPDate.parse(written) == date, "\(text.debugDescription) → \(written.debugDescription) reads differently")
        }

    static let rfc3339 = FuzzTarget(
        name: "rfc3339", summary: "RFC3339.parse; parse, format, parse gives the same instant; format never traps") { bytes in
            if bytes.count == 8 {
                _ = RFC3339.format(milliseconds: Int64(bitPattern: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let milliseconds = RFC3339.parse(text) else { return }
            let written = RFC3339.format(milliseconds: milliseconds)
            invariant(
                RFC3339.parse(written) == milliseconds,
                "\(text.debugDescription) → \(milliseconds) ms → \(written.debugDescription) reads \(String(describing: RFC3339.parse(written)))")
        }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for years 0–9999 (what the parser accepts back), else nil.
    static func imfFixdate(_ seconds: Int64) -> String? {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil, (0...9999).contains(Int(parts.tm_year) + 1900) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func padded(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "Sun, \(padded(parts.tm_mday, 2)) \(months[Int(parts.tm_mon)]) \(padded(parts.tm_year + 1900, 4)) "
            + "\(padded(parts.tm_hour, 2)):\(padded(parts.tm_min, 2)):\(padded(parts.tm_sec, 2)) GMT"
    }
}
