import Glibc
import Logging

/// One logfmt line per record on stderr (contract §10.1): `time=… level=… msg=… key=value …`.
/// Each line goes out in a single write(2), so lines of concurrent threads and processes never interleave.
public struct LogfmtLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let fileDescriptor: Int32
    private let colour: Bool

    public init(level: Logger.Level, fileDescriptor: Int32 = STDERR_FILENO) {
        self.logLevel = level
        self.fileDescriptor = fileDescriptor
        self.colour = isatty(fileDescriptor) == 1
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "time=\(LogfmtLogHandler.timestamp()) level=\(LogfmtLogHandler.name(of: event.level)) msg=\(LogfmtLogHandler.quoted(event.message.description))"
        if colour {
            line = LogfmtLogHandler.colourCode(event.level) + line + "\u{1B}[0m"
        }
        let merged = metadata.isEmpty ? event.metadata ?? [:] : metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            line += " \(LogfmtLogHandler.quoted(key))=\(LogfmtLogHandler.quoted(merged[key]!.description))"
        }
        line += "\n"
        FileDescriptor.writeAll(fileDescriptor, Array(line.utf8))
    }

    static func name(of level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warn"
        case .error, .critical: "error"
        }
    }

    private static func colourCode(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "\u{1B}[90m"
        case .info, .notice: "\u{1B}[0m"
        case .warning: "\u{1B}[33m"
        case .error, .critical: "\u{1B}[31m"
        }
    }

    /// Bare when safe, else a double-quoted string with `"` and `\` backslash-escaped and every
    /// character that could break the record's line in some viewer as `\uXXXX` (contract §13.6): C0
    /// controls, DEL, C1 controls (U+0080–U+009F; U+0085 is a line break to some), U+2028 and U+2029.
    static func quoted(_ value: String) -> String {
        // ASCII values (nearly all: keys, IDs, addresses, messages) are classified in one pass over
        // their bytes; the scalar scans below were a sixth of the cost of a token's log line.
        let ascii = value.utf8.withContiguousStorageIfAvailable { bytes -> (bare: Bool, plain: Bool)? in
            var bare = !bytes.isEmpty, plain = true
            for byte in bytes {
                switch byte {
                case 0x80...: return nil
                case 0x00...0x1F, 0x7F, UInt8(ascii: "\""), UInt8(ascii: "\\"): bare = false; plain = false
                case UInt8(ascii: " "), UInt8(ascii: "="): bare = false
                default: break
                }
            }
            return (bare, plain)
        } ?? nil
        if let ascii {
            if ascii.bare { return value }
            if ascii.plain { return "\"" + value + "\"" }
        }
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || needsEscape($0) }
        guard needsQuotes else { return value }
        // Most quoted values (messages) only hold spaces: quoted whole, not copied scalar by scalar.
        if !value.unicodeScalars.contains(where: { $0 == "\"" || $0 == "\\" || needsEscape($0) }) {
            return "\"" + value + "\""
        }
        var output = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case _ where needsEscape(scalar):
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output + "\""
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        default: false
        }
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return RFC3339.format(milliseconds: Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
    }
}
