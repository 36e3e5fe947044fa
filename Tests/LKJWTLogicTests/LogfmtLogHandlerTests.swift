import Glibc
import Logging
import Testing

@testable import LKJWTLogic

/// Contract §10.1 and §13.6: one logfmt line per record, whatever the values contain.
struct LogfmtLogHandlerTests {
    /// Every scalar §13.6 names, and neighbours that must stay as they are.
    static let escaped: [Unicode.Scalar] = [
        "\u{00}", "\u{07}", "\u{09}", "\u{0A}", "\u{0B}", "\u{0C}", "\u{0D}", "\u{1B}", "\u{1F}", "\u{7F}",
        "\u{80}", "\u{85}", "\u{9B}", "\u{9F}", "\u{2028}", "\u{2029}",
    ]
    static let kept: [Unicode.Scalar] = ["\u{20}", "~", "\u{A0}", "é", "\u{2027}", "\u{202A}", "\u{FEFF}", "😀"]

    @Test(arguments: escaped)
    func lineBreakingCharactersBecomeUnicodeEscapes(_ scalar: Unicode.Scalar) {
        let hex = String(scalar.value, radix: 16)
        let escape = "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        #expect(LogfmtLogHandler.quoted("a\(Character(scalar))b") == "\"a\(escape)b\"")
    }

    @Test(arguments: kept)
    func otherCharactersStayAsTheyAre(_ scalar: Unicode.Scalar) {
        let value = "a\(Character(scalar))b"
        #expect(LogfmtLogHandler.quoted(value) == (scalar == " " ? "\"a b\"" : value))
    }

    @Test(arguments: [
        ("plain", "plain"),
        ("", "\"\""),
        ("a=b", "\"a=b\""),
        ("say \"hi\"", #""say \"hi\"""#),
        (#"back\slash"#, #""back\\slash""#),
        (#"\u2028"#, #""\\u2028""#),
    ])
    func quotingAndBackslashes(_ value: String, _ expected: String) {
        #expect(LogfmtLogHandler.quoted(value) == expected)
    }

    /// What an operator sees can be turned back into the logged value: nothing is lost or ambiguous,
    /// and the text contains no character that could break a line.
    @Test func escapedValuesRoundTripVisibly() throws {
        let values = [
            "@mallory:example.org\u{2028}level=info msg=\"forged\"",
            "line\nbreak\r\n\u{85}next\u{2029}para",
            "\u{1B}[31mred\u{1B}[0m \u{9B}2J",
            "a\\u2028b \\\" \"",
            String(String.UnicodeScalarView((0...0xFF).compactMap(Unicode.Scalar.init))),
        ]
        for value in values {
            let quoted = LogfmtLogHandler.quoted(value)
            #expect(!quoted.unicodeScalars.contains(where: LogfmtLogHandler.needsEscape))
            #expect(try Self.unquoted(quoted) == value)
        }
    }

    @Test func recordIsOneLineWithSortedFields() throws {
        let lines = try Self.logged(level: .info) { logger in
            logger.info("token\u{2028}issued", metadata: ["matrixId": "@a\u{85}b:example.org", "Origin": "x\ny", "access": "full"])
        }
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(line.hasPrefix("time="))
        #expect(line.hasSuffix(#" level=info msg="token\u2028issued" Origin="x\u000ay" access=full matrixId="@a\u0085b:example.org""#))
        #expect(!line.unicodeScalars.contains(where: LogfmtLogHandler.needsEscape))
    }

    @Test func recordsBelowTheLevelAreDropped() throws {
        let lines = try Self.logged(level: .info) { logger in
            logger.debug("Health check")
            logger.warning("kept")
        }
        #expect(lines.count == 1)
        #expect(lines.first?.contains(" level=warn msg=kept") == true)
    }

    // MARK: Helpers

    /// The lines `body` logs through a handler writing to a pipe (not a TTY: no colour).
    static func logged(level: Logger.Level, _ body: (Logger) -> Void) throws -> [String] {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        let handler = LogfmtLogHandler(level: level, fileDescriptor: ends[1])
        body(Logger(label: "test", factory: { _ in handler }))
        close(ends[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(ends[0], &chunk, chunk.count)
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        close(ends[0])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasSuffix("\n") || text.isEmpty)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    struct Malformed: Error {}

    /// The inverse of `quoted`, as a log reader would implement it.
    static func unquoted(_ text: String) throws -> String {
        guard text.hasPrefix("\"") else { return text }
        guard text.count >= 2, text.hasSuffix("\"") else { throw Malformed() }
        var scalars = Array(text.unicodeScalars.dropFirst().dropLast())[...]
        var output = String.UnicodeScalarView()
        while let scalar = scalars.popFirst() {
            guard scalar == "\\" else {
                guard scalar != "\"" else { throw Malformed() }
                output.append(scalar)
                continue
            }
            switch scalars.popFirst() {
            case "\\": output.append("\\")
            case "\"": output.append("\"")
            case "u":
                guard scalars.count >= 4, let value = UInt32(String(String.UnicodeScalarView(scalars.prefix(4))), radix: 16),
                      let decoded = Unicode.Scalar(value)
                else { throw Malformed() }
                scalars = scalars.dropFirst(4)
                output.append(decoded)
            default: throw Malformed()
            }
        }
        return String(output)
    }
}
