import FoundationEssentials
import Glibc

/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate, the obsolete RFC 850 form and asctime.
/// Used for `Expires` and `Retry-After`.
public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    public static func parse(_ text: String) -> Date? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        switch fields.count {
        case 6 where fields[5] == "GMT":
            // Sun, 06 Nov 1994 08:49:37 GMT
            return make(year: fields[3], month: fields[2], day: fields[1], time: fields[4])
        case 4 where fields[3] == "GMT":
            // Sunday, 06-Nov-94 08:49:37 GMT
            let parts = fields[1].split(separator: "-").map(String.init)
            guard parts.count == 3, parts[2].count == 2, let shortYear = Int(parts[2]) else { return nil }
            // RFC 9110: a two-digit year more than 50 years ahead lies in the past century.
            let year = shortYear < 70 ? 2000 + shortYear : 1900 + shortYear
            return make(year: String(year), month: parts[1], day: parts[0], time: fields[2])
        case 5:
            // Sun Nov  6 08:49:37 1994
            return make(year: fields[4], month: fields[1], day: fields[2], time: fields[3])
        default:
            return nil
        }
    }

    private static func make(year: String, month: String, day: String, time: String) -> Date? {
        let clock = time.split(separator: ":").compactMap { Int32($0) }
        guard year.count == 4, let year = Int32(year), let day = Int32(day), (1...31).contains(day),
            let month = months.firstIndex(of: month.lowercased()), clock.count == 3,
            (0...23).contains(clock[0]), (0...59).contains(clock[1]), (0...60).contains(clock[2])
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = Int32(month)
        parts.tm_mday = day
        parts.tm_hour = clock[0]
        parts.tm_min = clock[1]
        parts.tm_sec = clock[2]
        return Date(timeIntervalSince1970: Double(timegm(&parts)))
    }
}
