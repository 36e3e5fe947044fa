import Foundation
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

/// Contract §13.6 and §2.3 row 8 (rev. 2): the password of `LIVEKIT_REDIS_URL` never shows, whatever
/// characters it contains, neither in the masked URL nor in the error detail.
struct RedisURLMaskingTests {
    /// Each holds the characters that ended the user info too early before: `/`, `?`, `#`, and `@`, `:`,
    /// `%`, spaces and quotes for good measure. Upper-case words, so that a piece found in the output
    /// cannot be a coincidence.
    static let passwords = [
        "SECRET3/CRYPT#TOKEN9", "PASS?WORD/SECRET#KEYX", "PASSX@WORDY@SECRETZ", "KEYONE:KEYTWO:KEYTHREE",
        "SPACEY SECRET\"QUOTEY\\TEXTY", "QUERYX?db=1SECRET", "XSEG/0?db=2#YSEG@ZSEG", "PERCENT%41SECRET",
    ]

    /// Templates around a password; `%@` stands for it.
    static let templates = [
        "redis://:%@@cache", "redis://user:%@@cache:6380/2", "rediss://user:%@@cache", "redis://%@@cache/1?db=3",
        "unix://:%@@/run/redis.sock?db=1", "unix://user:%@@/run/redis.sock", "redis://:%@@cache:notaport",
        "redis://:%@@cache/x", "redis://:%@@[::1", "redis://:%@@cache?timeout=5", "http://:%@@cache",
    ]

    static func url(_ template: String, _ password: String) -> String {
        template.replacingOccurrences(of: "%@", with: password)
    }

    /// The password's pieces between separators: none of them may show. Where the template has no
    /// user name, a password with `:` reads as `user:password` (URL syntax), and its user name may show.
    static func fragments(of password: String, in template: String) -> [String] {
        let secret = template.contains("://%@") ? password.split(separator: ":", maxSplits: 1).last.map(String.init) ?? "" : password
        return secret.split(whereSeparator: { "/?#@: \"\\%=".contains($0) }).map(String.init).filter { $0.count >= 4 }
    }

    @Test(arguments: templates)
    func maskedURLShowsNoPartOfThePassword(template: String) {
        for password in Self.passwords {
            let masked = RedisURL.maskingPassword(in: Self.url(template, password))
            for fragment in Self.fragments(of: password, in: template) {
                #expect(!masked.contains(fragment), "\(masked) shows \(fragment)")
            }
            #expect(masked.contains("***@"))
        }
    }

    @Test(arguments: templates)
    func startUpErrorShowsNoPartOfThePassword(template: String) {
        for password in Self.passwords {
            let message: String
            do {
                // Every template that parses names an unreachable host or socket, so this always fails.
                _ = try JobStoreLocation.redis(url: Self.url(template, password).replacingOccurrences(of: "@cache", with: "@127.0.0.1:1")).open()
                Issue.record("opened \(template)")
                continue
            } catch {
                message = error.message
            }
            for fragment in Self.fragments(of: password, in: template) {
                #expect(!message.contains(fragment), "\(message) shows \(fragment)")
            }
        }
    }

    @Test(arguments: [
        ("redis://:s3/cr#t@host", "redis://:***@host", RedisURL(endpoint: .tcp(host: "host", port: 6379), password: "s3/cr#t")),
        ("redis://u:p?a/s#s@host:7000/4", "redis://u:***@host:7000/4", RedisURL(endpoint: .tcp(host: "host", port: 7000), username: "u", password: "p?a/s#s", database: 4)),
        ("redis://s3/cr?t@host?db=2", "redis://***@host?db=2", RedisURL(endpoint: .tcp(host: "host", port: 6379), username: "s3/cr?t", database: 2)),
        ("unix://:p/w@d@/run/r@dis.sock", "unix://:***@/run/r@dis.sock", RedisURL(endpoint: .unix(path: "/run/r@dis.sock"), password: "p/w@d")),
        ("unix:///run/r@dis.sock", "unix:///run/r@dis.sock", RedisURL(endpoint: .unix(path: "/run/r@dis.sock"))),
    ])
    func userInfoRunsToTheLastAtBeforeTheHost(text: String, masked: String, parsed: RedisURL) throws {
        #expect(RedisURL.maskingPassword(in: text) == masked)
        #expect(try RedisURL(parsing: text) == parsed)
    }

    @Test(arguments: [
        // Without a scheme, or with something no scheme can be, the whole text up to the last `@` may be
        // the password.
        (":secret@host", "***@host"),
        ("secret@host", "***@host"),
        ("pa:ss://x@host", "***@host"),
        ("se cret://x@host", "***@host"),
    ])
    func noSchemeMasksEverythingBeforeTheLastAt(text: String, masked: String) {
        #expect(RedisURL.maskingPassword(in: text) == masked)
        #expect(throws: RedisURL.ParseError("missing scheme, expected redis://, rediss:// or unix://")) { try RedisURL(parsing: text) }
    }

    @Test func rowEightTextMasksTheURLAndKeepsTheDetail() {
        do {
            _ = try JobStoreLocation.redis(url: "redis://:s3/cr#t@cache:notaport").open()
            Issue.record("opened")
        } catch {
            #expect(error.message == #"Could not connect Redis store: store: invalid Redis URL "redis://:***@cache:notaport": invalid port "notaport""#)
        }
    }
}
