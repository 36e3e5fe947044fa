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
        // Built as bytes in one buffer: through string interpolation and one quoted copy per key and
        // value, a token request's line cost more than its JWT's signature.
        var line: [UInt8] = []
        line.reserveCapacity(512)
        if colour { line += LogfmtLogHandler.colourCode(event.level).utf8 }
        line += "time=".utf8
        line += LogfmtLogHandler.timestamp().utf8
        line += " level=".utf8
        line += LogfmtLogHandler.name(of: event.level).utf8
        line += " msg=".utf8
        LogfmtLogHandler.appendQuoted(event.message.description, to: &line)
        if colour { line += "\u{1B}[0m".utf8 }
        let merged = metadata.isEmpty ? event.metadata ?? [:] : metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: " "))
            LogfmtLogHandler.appendQuoted(key, to: &line)
            line.append(UInt8(ascii: "="))
            LogfmtLogHandler.appendQuoted(value.description, to: &line)
        }
        line.append(UInt8(ascii: "\n"))
        FileDescriptor.writeAll(fileDescriptor, line)
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
        var output: [UInt8] = []
        appendQuoted(value, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    static func appendQuoted(_ value: String, to output: inout [UInt8]) {
        // ASCII values (nearly all: keys, IDs, addresses, messages) are classified in one pass over
        // their bytes and copied whole.
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
        let (bare, plain) = ascii ?? (
            bare: !value.isEmpty && !value.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || needsEscape($0) },
            plain: !value.unicodeScalars.contains { $0 == "\"" || $0 == "\\" || needsEscape($0) }
        )
        if bare {
            output += value.utf8
            return
        }
        output.append(UInt8(ascii: "\""))
        defer { output.append(UInt8(ascii: "\"")) }
        // Most quoted values (messages) only hold spaces: copied whole.
        if plain {
            output += value.utf8
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\"".utf8
            case "\\": output += "\\\\".utf8
            case _ where needsEscape(scalar):
                let hex = String(scalar.value, radix: 16)
                output += "\\u".utf8
                output += repeatElement(UInt8(ascii: "0"), count: 4 - hex.count)
                output += hex.utf8
            default: UTF8.encode(scalar) { output.append($0) }
            }
        }
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
