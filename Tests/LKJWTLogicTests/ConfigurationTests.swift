import FoundationEssentials
import Logging
import LKJWTTestSupport
import Testing
@testable import LKJWTLogic

private let minimal = ["LIVEKIT_URL": "wss://sfu.example.com", "LIVEKIT_KEY": "devkey", "LIVEKIT_SECRET": "devsecret"]

private func parse(
    _ environment: [String: String], files: [String: String] = [:]
) throws(ConfigurationError) -> (configuration: Configuration, notices: [ConfigurationNotice]) {
    try Configuration.parse(environment: environment, files: files)
}

private func parseError(_ environment: [String: String], files: [String: String] = [:]) -> String? {
    Configuration.parseError(environment: environment, files: files)
}

private func merged(_ extra: [String: String]) -> [String: String] {
    minimal.merging(extra) { $1 }
}

private func warnings(_ lines: [String]) -> [ConfigurationNotice] {
    lines.map { ConfigurationNotice(level: .warning, message: $0) }
}

private let skipTLSBannerLines = [
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "!!! WARNING !!!  LIVEKIT_INSECURE_SKIP_VERIFY_TLS        !!! WARNING !!!",
    "!!! WARNING !!!  Allow to skip invalid TLS certificates  !!! WARNING !!!",
    "!!! WARNING !!!  Use only for testing or debugging       !!! WARNING !!!",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
]

private let fullAccessBannerLines = [
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "!!! WARNING !!!  LIVEKIT_FULL_ACCESS_HOMESERVERS is not set            !!!",
    "!!! WARNING !!!  Defaulting to '*': users of ANY homeserver can make   !!!",
    "!!! WARNING !!!  this service create rooms on your SFU. Set it to the  !!!",
    "!!! WARNING !!!  server name(s) you intend to serve.                   !!!",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
]

private let keyFromVariable = ConfigurationNotice(level: .info, message: "Using LiveKit API key from LIVEKIT_KEY")
private let secretFromVariable = ConfigurationNotice(level: .info, message: "Using LiveKit API secret from LIVEKIT_SECRET")

struct ConfigurationTests {
    // MARK: Whole environments

    @Test func minimalEnvironmentGetsEveryDefault() throws {
        let (configuration, notices) = try parse(minimal)
        #expect(configuration == Configuration(
            liveKitURL: "wss://sfu.example.com", apiKey: "devkey", apiSecret: "devsecret",
            accessPolicy: .everyone, listenAddress: .tcp(host: "127.0.0.1", port: 8080), tls: TLSSettings(),
            sanityCheckIntervalSeconds: 0, logLevel: .info, csAPIURLOverrides: CSAPIURLOverrides(),
            jobStore: .sqlite(path: "/var/lib/lkjwt-fcgi/jobs.sqlite3")))
        #expect(notices == [keyFromVariable, secretFromVariable] + warnings(fullAccessBannerLines))
    }

    @Test func everyVariableSet() throws {
        let environment = [
            "LIVEKIT_URL": " ws://host:7880/livekit/sfu/ ",
            "LIVEKIT_KEY": "devkey",
            "LIVEKIT_SECRET": "devsecret",
            "LIVEKIT_FULL_ACCESS_HOMESERVERS": "example.com, example.org",
            "LIVEKIT_JWT_BIND": "127.0.0.1:9000",
            "SSL_CERT_FILE": "/etc/ssl/private-ca.pem",
            "SSL_CERT_DIR": "/etc/ssl/private-ca.d",
            "LIVEKIT_INSECURE_SKIP_VERIFY_TLS": "YES_I_KNOW_WHAT_I_AM_DOING",
            "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "30",
            "LIVEKIT_LOG_LEVEL": "DEBUG",
            "LIVEKIT_CS_API_URL_OVERRIDES": "example.com=https://matrix-client.example.com",
            "LIVEKIT_JOBS_DB": "/srv/jobs.sqlite3",
        ]
        let (configuration, notices) = try parse(environment)
        #expect(configuration == Configuration(
            liveKitURL: " ws://host:7880/livekit/sfu/ ", apiKey: "devkey", apiSecret: "devsecret",
            accessPolicy: .servers(["example.com", "example.org"]), listenAddress: .tcp(host: "127.0.0.1", port: 9000),
            tls: TLSSettings(skipVerification: true, caFile: "/etc/ssl/private-ca.pem", caDirectory: "/etc/ssl/private-ca.d"),
            sanityCheckIntervalSeconds: 30, logLevel: .debug,
            csAPIURLOverrides: CSAPIURLOverrides(["example.com": "https://matrix-client.example.com"]),
            jobStore: .sqlite(path: "/srv/jobs.sqlite3")))
        #expect(notices == warnings(skipTLSBannerLines) + [keyFromVariable, secretFromVariable])
    }

    // MARK: Errors, in the order of §2.3

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let name: String
        let environment: [String: String]
        var files: [String: String] = [:]
        let message: String
        var testDescription: String { name }
    }

    static let missingCredentials = "LIVEKIT_KEY* / LIVEKIT_SECRET* and LIVEKIT_URL must be set"

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "nothing set", environment: [:], message: missingCredentials),
        ErrorCase(name: "no URL", environment: ["LIVEKIT_KEY": "k", "LIVEKIT_SECRET": "s"], message: missingCredentials),
        ErrorCase(name: "empty URL", environment: merged(["LIVEKIT_URL": ""]), message: missingCredentials),
        ErrorCase(name: "no key", environment: ["LIVEKIT_URL": "wss://x", "LIVEKIT_SECRET": "s"], message: missingCredentials),
        ErrorCase(name: "no secret", environment: ["LIVEKIT_URL": "wss://x", "LIVEKIT_KEY": "k"], message: missingCredentials),
        ErrorCase(name: "key trims to empty", environment: merged(["LIVEKIT_KEY": " \r\n "]), message: missingCredentials),
        ErrorCase(
            name: "secret file trims to empty", environment: merged(["LIVEKIT_SECRET_FROM_FILE": "/s"]), files: ["/s": "\n"],
            message: missingCredentials),
        ErrorCase(
            name: "key file with empty secret", environment: ["LIVEKIT_URL": "wss://x", "LIVEKIT_KEY_FILE": "/kf"],
            files: ["/kf": "key:\n"], message: missingCredentials),
        ErrorCase(
            name: "unreadable key file", environment: merged(["LIVEKIT_KEY_FILE": "/missing"]),
            message: "open /missing: no such file or directory"),
        ErrorCase(
            name: "unreadable key from file", environment: merged(["LIVEKIT_KEY_FROM_FILE": "/missing-key"]),
            message: "open /missing-key: no such file or directory"),
        ErrorCase(
            name: "unreadable secret from file", environment: merged(["LIVEKIT_SECRET_FROM_FILE": "/missing-secret"]),
            message: "open /missing-secret: no such file or directory"),
        ErrorCase(
            name: "key file with two colons", environment: merged(["LIVEKIT_KEY_FILE": "/kf"]),
            files: ["/kf": "key: APIkey\nsecret: APIsecret\n"], message: "invalid key secret file format!"),
        ErrorCase(
            name: "key file without colon", environment: merged(["LIVEKIT_KEY_FILE": "/kf"]), files: ["/kf": "keysecret\n"],
            message: "invalid key secret file format!"),
        ErrorCase(
            name: "empty key file", environment: merged(["LIVEKIT_KEY_FILE": "/kf"]), files: ["/kf": ""],
            message: "invalid key secret file format!"),
        ErrorCase(
            name: "key file error before missing URL", environment: ["LIVEKIT_KEY_FILE": "/kf"], files: ["/kf": "a:b:c"],
            message: "invalid key secret file format!"),
        ErrorCase(
            name: "missing URL before bind/port conflict",
            environment: ["LIVEKIT_KEY": "k", "LIVEKIT_SECRET": "s", "LIVEKIT_JWT_BIND": ":1", "LIVEKIT_JWT_PORT": "2"],
            message: missingCredentials),
        ErrorCase(
            name: "bind and port", environment: merged(["LIVEKIT_JWT_BIND": ":9000", "LIVEKIT_JWT_PORT": "9000"]),
            message: "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT must not be set together"),
        ErrorCase(
            name: "bind and invalid port", environment: merged(["LIVEKIT_JWT_BIND": "x:y", "LIVEKIT_JWT_PORT": "z"]),
            message: "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT must not be set together"),
        ErrorCase(
            name: "bind/port conflict before interval",
            environment: merged(["LIVEKIT_JWT_BIND": ":1", "LIVEKIT_JWT_PORT": "2", "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "x"]),
            message: "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT must not be set together"),
        ErrorCase(
            name: "bind port not a number", environment: merged(["LIVEKIT_JWT_BIND": "host:notaport"]),
            message: #"LIVEKIT_JWT_BIND is not a valid listen address: "host:notaport""#),
        ErrorCase(
            name: "bind port zero", environment: merged(["LIVEKIT_JWT_BIND": "localhost:0"]),
            message: #"LIVEKIT_JWT_BIND is not a valid listen address: "localhost:0""#),
        ErrorCase(
            name: "bind port too large", environment: merged(["LIVEKIT_JWT_BIND": ":65536"]),
            message: #"LIVEKIT_JWT_BIND is not a valid listen address: ":65536""#),
        ErrorCase(
            name: "bind unbracketed IPv6", environment: merged(["LIVEKIT_JWT_BIND": "::1:9000"]),
            message: #"LIVEKIT_JWT_BIND is not a valid listen address: "::1:9000""#),
        ErrorCase(
            name: "bind empty unix path", environment: merged(["LIVEKIT_JWT_BIND": "unix:"]),
            message: #"LIVEKIT_JWT_BIND is not a valid listen address: "unix:""#),
        ErrorCase(
            name: "bind quoted", environment: merged(["LIVEKIT_JWT_BIND": "a\"b:\n"]),
            message: #"LIVEKIT_JWT_BIND is not a valid listen address: "a\"b:\n""#),
        ErrorCase(
            name: "port not a number", environment: merged(["LIVEKIT_JWT_PORT": "http"]),
            message: #"LIVEKIT_JWT_PORT must be a port number, got "http""#),
        ErrorCase(
            name: "port zero", environment: merged(["LIVEKIT_JWT_PORT": "0"]),
            message: #"LIVEKIT_JWT_PORT must be a port number, got "0""#),
        ErrorCase(
            name: "port too large", environment: merged(["LIVEKIT_JWT_PORT": "65536"]),
            message: #"LIVEKIT_JWT_PORT must be a port number, got "65536""#),
        ErrorCase(
            name: "port with sign", environment: merged(["LIVEKIT_JWT_PORT": "+8080"]),
            message: #"LIVEKIT_JWT_PORT must be a port number, got "+8080""#),
        ErrorCase(
            name: "port with space", environment: merged(["LIVEKIT_JWT_PORT": " 8080"]),
            message: #"LIVEKIT_JWT_PORT must be a port number, got " 8080""#),
        ErrorCase(
            name: "port with colon", environment: merged(["LIVEKIT_JWT_PORT": ":8080"]),
            message: #"LIVEKIT_JWT_PORT must be a port number, got ":8080""#),
        ErrorCase(
            name: "interval negative", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "-1"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "-1""#),
        ErrorCase(
            name: "interval word", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "30s"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "30s""#),
        ErrorCase(
            name: "interval leading space", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": " 5"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got " 5""#),
        ErrorCase(
            name: "interval trailing newline", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "5\n"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "5\n""#),
        ErrorCase(
            name: "interval decimal", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "1.5"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "1.5""#),
        ErrorCase(
            name: "interval sign only", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "+"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "+""#),
        ErrorCase(
            name: "interval overflow", environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "9223372036854775808"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "9223372036854775808""#),
        ErrorCase(
            name: "interval before overrides",
            environment: merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "x", "LIVEKIT_CS_API_URL_OVERRIDES": "y"]),
            message: #"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "x""#),
        ErrorCase(
            name: "override without =", environment: merged(["LIVEKIT_CS_API_URL_OVERRIDES": "example.com"]),
            message: #"failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry "example.com", expected server_name=url"#),
        ErrorCase(
            name: "override trailing comma", environment: merged(["LIVEKIT_CS_API_URL_OVERRIDES": "a=https://a,"]),
            message: #"failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry "", expected server_name=url"#),
        ErrorCase(
            name: "overrides are parsed before the job store is looked at",
            environment: merged(["LIVEKIT_CS_API_URL_OVERRIDES": " = ", "LIVEKIT_REDIS_URL": "::"]),
            message: #"failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry " = ", expected server_name=url"#),
    ]

    @Test(arguments: errorCases)
    func errorText(_ errorCase: ErrorCase) {
        #expect(parseError(errorCase.environment, files: errorCase.files) == errorCase.message)
    }

    @Test func errorDescriptionIsTheMessage() {
        let error = ConfigurationError.missingCredentials
        #expect(error.description == error.message)
        #expect("\(error)" == "LIVEKIT_KEY* / LIVEKIT_SECRET* and LIVEKIT_URL must be set")
    }

    @Test func errorTextsOfTheStoreAndListenSteps() {
        #expect(ConfigurationError.invalidRedisURL("redis://x:y", detail: "invalid port").message
            == #"Could not connect Redis store: store: invalid Redis URL "redis://x:y": invalid port"#)
        #expect(ConfigurationError.redisPingFailed(detail: "connection refused").message
            == "Could not connect Redis store: store: Redis ping failed: connection refused")
        #expect(ConfigurationError.jobsDatabaseUnavailable(path: "/var/lib/\"x\"", detail: "unable to open database file").message
            == #"Could not open jobs database "/var/lib/\"x\"": unable to open database file"#)
        #expect(ConfigurationError.cannotListen(address: ":80", detail: "Permission denied").message
            == #"Could not listen on ":80": Permission denied"#)
    }

    // MARK: Key and secret (§2.2)

    struct KeyCase: Sendable, CustomTestStringConvertible {
        let name: String
        let files: [String: String]
        let environment: [String: String]
        let key: String
        let secret: String
        let notices: [ConfigurationNotice]
        var testDescription: String { name }
    }

    static let keyCases: [KeyCase] = [
        KeyCase(
            name: "key file wins over all four", files: ["/kf": "keysecret_A: keysecret_B\n"],
            environment: [
                "LIVEKIT_KEY_FILE": "/kf", "LIVEKIT_KEY": "k", "LIVEKIT_SECRET": "s",
                "LIVEKIT_KEY_FROM_FILE": "/missing", "LIVEKIT_SECRET_FROM_FILE": "/missing",
            ],
            key: "keysecret_A", secret: "keysecret_B",
            notices: [ConfigurationNotice(
                level: .info, message: "Using LiveKit API key and secret from LIVEKIT_KEY_FILE", metadata: ["keySecretPath": "/kf"])]),
        KeyCase(
            name: "key file CRLF", files: ["/kf": "\r\n key\r\n:\r\nsecret \r\n"], environment: ["LIVEKIT_KEY_FILE": "/kf"],
            key: "key", secret: "secret",
            notices: [ConfigurationNotice(
                level: .info, message: "Using LiveKit API key and secret from LIVEKIT_KEY_FILE", metadata: ["keySecretPath": "/kf"])]),
        KeyCase(
            name: "empty key file variable is ignored", files: [:],
            environment: ["LIVEKIT_KEY_FILE": "", "LIVEKIT_KEY": "k", "LIVEKIT_SECRET": "s"],
            key: "k", secret: "s", notices: [keyFromVariable, secretFromVariable]),
        KeyCase(
            name: "key from file, secret from variable", files: ["/k": "filekey\n"],
            environment: ["LIVEKIT_KEY_FROM_FILE": "/k", "LIVEKIT_KEY": "envkey", "LIVEKIT_SECRET": "s"],
            key: "filekey", secret: "s",
            notices: [
                ConfigurationNotice(level: .info, message: "Using LiveKit API key from LIVEKIT_KEY_FROM_FILE", metadata: ["keyPath": "/k"]),
                secretFromVariable,
            ]),
        KeyCase(
            name: "secret file ending in CRLF", files: ["/s": "filesecret\r\n"],
            environment: ["LIVEKIT_KEY": "k", "LIVEKIT_SECRET_FROM_FILE": "/s", "LIVEKIT_SECRET": "envsecret"],
            key: "k", secret: "filesecret",
            notices: [
                keyFromVariable,
                ConfigurationNotice(level: .info, message: "Using LiveKit API secret from LIVEKIT_SECRET_FROM_FILE", metadata: ["secretPath": "/s"]),
            ]),
        KeyCase(
            name: "both from files", files: ["/k": "k1", "/s": "s1"],
            environment: ["LIVEKIT_KEY_FROM_FILE": "/k", "LIVEKIT_SECRET_FROM_FILE": "/s"],
            key: "k1", secret: "s1",
            notices: [
                ConfigurationNotice(level: .info, message: "Using LiveKit API key from LIVEKIT_KEY_FROM_FILE", metadata: ["keyPath": "/k"]),
                ConfigurationNotice(level: .info, message: "Using LiveKit API secret from LIVEKIT_SECRET_FROM_FILE", metadata: ["secretPath": "/s"]),
            ]),
        KeyCase(
            name: "colons allowed in separate files", files: ["/k": "a:b", "/s": "c:d:e"],
            environment: ["LIVEKIT_KEY_FROM_FILE": "/k", "LIVEKIT_SECRET_FROM_FILE": "/s"],
            key: "a:b", secret: "c:d:e",
            notices: [
                ConfigurationNotice(level: .info, message: "Using LiveKit API key from LIVEKIT_KEY_FROM_FILE", metadata: ["keyPath": "/k"]),
                ConfigurationNotice(level: .info, message: "Using LiveKit API secret from LIVEKIT_SECRET_FROM_FILE", metadata: ["secretPath": "/s"]),
            ]),
        KeyCase(
            name: "only space, CR and LF are trimmed", files: [:],
            environment: ["LIVEKIT_KEY": "\t key\t", "LIVEKIT_SECRET": " \u{00A0}secret\u{0B}\n"],
            key: "\t key\t", secret: "\u{00A0}secret\u{0B}", notices: [keyFromVariable, secretFromVariable]),
        KeyCase(
            name: "inner whitespace kept", files: [:], environment: ["LIVEKIT_KEY": " a b ", "LIVEKIT_SECRET": "\nc\r\nd\n"],
            key: "a b", secret: "c\r\nd", notices: [keyFromVariable, secretFromVariable]),
    ]

    @Test(arguments: keyCases)
    func keyAndSecretSources(_ keyCase: KeyCase) throws {
        var environment = keyCase.environment
        environment["LIVEKIT_URL"] = "wss://sfu.example.com"
        environment["LIVEKIT_FULL_ACCESS_HOMESERVERS"] = "example.org"
        let (configuration, notices) = try parse(environment, files: keyCase.files)
        #expect(configuration.apiKey == keyCase.key)
        #expect(configuration.apiSecret == keyCase.secret)
        #expect(notices == keyCase.notices)
    }

    @Test func noticesNeverCarryTheKeyOrSecret() throws {
        let files = ["/kf": "KEY-VALUE-1:SECRET-VALUE-1", "/k": "KEY-VALUE-2", "/s": "SECRET-VALUE-2"]
        let environments = [
            merged(["LIVEKIT_KEY_FILE": "/kf"]),
            merged(["LIVEKIT_KEY_FROM_FILE": "/k", "LIVEKIT_SECRET_FROM_FILE": "/s"]),
            ["LIVEKIT_URL": "wss://x", "LIVEKIT_KEY": "KEY-VALUE-3", "LIVEKIT_SECRET": "SECRET-VALUE-3"],
        ]
        for environment in environments {
            let (configuration, notices) = try parse(environment, files: files)
            for notice in notices {
                for text in [notice.message] + notice.metadata.values {
                    #expect(!text.contains(configuration.apiKey))
                    #expect(!text.contains(configuration.apiSecret))
                }
            }
        }
    }

    @Test func keyFileOnDisk() throws {
        let directory = FileManager.default.temporaryDirectory.appending(path: "lkjwt-config-\(UInt64.random(in: .min ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyFile = directory.appending(path: "livekit.key").path
        #expect(FileManager.default.createFile(atPath: keyFile, contents: Data("APIkey: s3cr3t \r\n".utf8)))
        let readFile = { (path: String) throws -> String in try String(contentsOfFile: path, encoding: .utf8) }

        let environment = ["LIVEKIT_URL": "wss://sfu.example.com", "LIVEKIT_KEY_FILE": keyFile]
        let (configuration, notices) = try Configuration.parse(environment: environment, readFile: readFile)
        #expect(configuration.apiKey == "APIkey")
        #expect(configuration.apiSecret == "s3cr3t")
        #expect(notices.first?.metadata == ["keySecretPath": keyFile])

        // The reader's error description is passed through as the message.
        let missing = directory.appending(path: "missing.key").path
        let error = #expect(throws: ConfigurationError.self) {
            try Configuration.parse(environment: ["LIVEKIT_URL": "wss://x", "LIVEKIT_KEY_FILE": missing], readFile: readFile)
        }
        #expect(error?.message.contains("No such file or directory") == true)
    }

    // MARK: TLS (§2.1, §10.3)

    @Test func skipVerificationBannerComesFirst() throws {
        let (configuration, notices) = try parse(merged(["LIVEKIT_INSECURE_SKIP_VERIFY_TLS": "YES_I_KNOW_WHAT_I_AM_DOING"]))
        #expect(configuration.tls.skipVerification)
        #expect(Array(notices.prefix(5)) == warnings(skipTLSBannerLines))
    }

    @Test(arguments: ["true", "1", "yes", "yes_i_know_what_i_am_doing", " YES_I_KNOW_WHAT_I_AM_DOING", "YES_I_KNOW_WHAT_I_AM_DOING\n", ""])
    func anythingElseKeepsVerification(_ value: String) throws {
        let (configuration, notices) = try parse(merged(["LIVEKIT_INSECURE_SKIP_VERIFY_TLS": value]))
        #expect(!configuration.tls.skipVerification)
        #expect(!notices.contains { $0.message.contains("LIVEKIT_INSECURE_SKIP_VERIFY_TLS") })
    }

    @Test func trustStoreVariables() throws {
        #expect(try parse(merged(["SSL_CERT_FILE": "", "SSL_CERT_DIR": ""])).configuration.tls == TLSSettings())
        #expect(try parse(merged(["SSL_CERT_FILE": "/ca.pem"])).configuration.tls == TLSSettings(caFile: "/ca.pem"))
        #expect(try parse(merged(["SSL_CERT_DIR": "/ca.d"])).configuration.tls == TLSSettings(caDirectory: "/ca.d"))
    }

    // MARK: Full-access homeservers

    @Test(arguments: [nil, "", " ", ",", " ,\t"] as [String?])
    func fullAccessDefaultsToEveryoneWithBanner(_ value: String?) throws {
        var environment = minimal
        environment["LIVEKIT_FULL_ACCESS_HOMESERVERS"] = value
        let (configuration, notices) = try parse(environment)
        #expect(configuration.accessPolicy == .everyone)
        #expect(Array(notices.suffix(6)) == warnings(fullAccessBannerLines))
    }

    @Test(arguments: [
        ("*", AccessPolicy.everyone),
        ("*, a", .servers(["*", "a"])),
        (" a,b  c ", .servers(["a", "b", "c"])),
    ])
    func fullAccessExplicit(_ value: String, _ expected: AccessPolicy) throws {
        let (configuration, notices) = try parse(merged(["LIVEKIT_FULL_ACCESS_HOMESERVERS": value]))
        #expect(configuration.accessPolicy == expected)
        #expect(notices == [keyFromVariable, secretFromVariable])
    }

    // MARK: Listen address

    @Test(arguments: [
        // rev. 2: LIVEKIT_JWT_PORT and the default are loopback; an explicit empty host is all interfaces.
        (["LIVEKIT_JWT_PORT": "9000"], ListenAddress.tcp(host: "127.0.0.1", port: 9000)),
        (["LIVEKIT_JWT_PORT": "08080"], .tcp(host: "127.0.0.1", port: 8080)),
        (["LIVEKIT_JWT_PORT": "65535"], .tcp(host: "127.0.0.1", port: 65535)),
        (["LIVEKIT_JWT_PORT": ""], .tcp(host: "127.0.0.1", port: 8080)),
        (["LIVEKIT_JWT_BIND": ""], .tcp(host: "127.0.0.1", port: 8080)),
        (["LIVEKIT_JWT_BIND": "", "LIVEKIT_JWT_PORT": "1"], .tcp(host: "127.0.0.1", port: 1)),
        (["LIVEKIT_JWT_BIND": ":9000", "LIVEKIT_JWT_PORT": ""], .tcp(host: "", port: 9000)),
        (["LIVEKIT_JWT_BIND": "0.0.0.0:9000"], .tcp(host: "0.0.0.0", port: 9000)),
        (["LIVEKIT_JWT_BIND": "localhost:9000"], .tcp(host: "localhost", port: 9000)),
        (["LIVEKIT_JWT_BIND": "[::1]:9000"], .tcp(host: "::1", port: 9000)),
        (["LIVEKIT_JWT_BIND": "unix:/run/lkjwt/fcgi.sock"], .unix(path: "/run/lkjwt/fcgi.sock")),
        (["LIVEKIT_JWT_BIND": "/run/lkjwt.sock"], .unix(path: "/run/lkjwt.sock")),
    ])
    func listenAddress(_ extra: [String: String], _ expected: ListenAddress) throws {
        #expect(try parse(merged(extra)).configuration.listenAddress == expected)
    }

    @Test(arguments: [
        ("unix:/run/x.sock", ListenAddress.unix(path: "/run/x.sock")),
        ("unix:relative.sock", .unix(path: "relative.sock")),
        ("unix:/odd:path", .unix(path: "/odd:path")),
        ("fcgi.sock", .unix(path: "fcgi.sock")),
        (":8080", .tcp(host: "", port: 8080)),
        ("0.0.0.0:1", .tcp(host: "0.0.0.0", port: 1)),
        ("[::]:9000", .tcp(host: "::", port: 9000)),
        ("[2001:db8::1]:443", .tcp(host: "2001:db8::1", port: 443)),
    ])
    func listenAddressParse(_ value: String, _ expected: ListenAddress) {
        #expect(ListenAddress.parse(value) == expected)
    }

    @Test(arguments: ["", "unix:", "host:", "host:notaport", "host:0", "host:65536", "host:-1", "host:+80", "host: 80",
                      "::1:80", "[::1]", "[::1:80", "::1]:80", "a]b:80", "[a]b:80", "host:99999999999999999999999"])
    func listenAddressRejects(_ value: String) {
        #expect(ListenAddress.parse(value) == nil)
    }

    @Test(arguments: [
        (ListenAddress.tcp(host: "", port: 8080), ":8080"),
        (.tcp(host: "127.0.0.1", port: 9000), "127.0.0.1:9000"),
        (.tcp(host: "::1", port: 9000), "[::1]:9000"),
        (.unix(path: "/run/x.sock"), "unix:/run/x.sock"),
    ])
    func listenAddressDescriptionRoundTrips(_ address: ListenAddress, _ expected: String) {
        #expect(address.description == expected)
        #expect(ListenAddress.parse(address.description) == address)
    }

    @Test(arguments: [
        (ListenAddress.unix(path: "/run/x.sock"), false),
        (.tcp(host: "127.0.0.1", port: 8080), false),
        (.tcp(host: "127.1.2.3", port: 8080), false),
        (.tcp(host: "localhost", port: 8080), false),
        (.tcp(host: "::1", port: 8080), false),
        (.tcp(host: "::ffff:127.0.0.1", port: 8080), false),
        (.tcp(host: "", port: 8080), true),
        (.tcp(host: "0.0.0.0", port: 8080), true),
        (.tcp(host: "::", port: 8080), true),
        (.tcp(host: "128.0.0.1", port: 8080), true),
        (.tcp(host: "10.0.0.5", port: 8080), true),
        (.tcp(host: "::2", port: 8080), true),
        (.tcp(host: "::ffff:10.0.0.1", port: 8080), true),
        (.tcp(host: "fcgi.example.org", port: 8080), true),
    ])
    func listenAddressExposure(_ address: ListenAddress, _ reachable: Bool) {
        #expect(address.isReachableFromOtherHosts == reachable)
        #expect((address.exposureNotice != nil) == reachable)
    }

    @Test func exposureNoticeIsAWarningNamingTheAddress() throws {
        let notice = try #require(try parse(merged(["LIVEKIT_JWT_BIND": ":9000"])).configuration.listenAddress.exposureNotice)
        #expect(notice.level == .warning)
        #expect(notice.message.contains("reachable from other hosts"))
        #expect(notice.metadata == ["LIVEKIT_JWT_BIND": ":9000"])
        #expect(try parse(minimal).configuration.listenAddress.exposureNotice == nil)
    }

    @Test func socketGroupIsOptional() throws {
        #expect(try parse(minimal).configuration.socketGroup == nil)
        #expect(try parse(merged(["LIVEKIT_JWT_SOCKET_GROUP": ""])).configuration.socketGroup == nil)
        #expect(try parse(merged(["LIVEKIT_JWT_SOCKET_GROUP": "www-data"])).configuration.socketGroup == "www-data")
    }

    // MARK: Sanity check interval

    @Test(arguments: [("0", 0), ("30", 30), ("+30", 30), ("007", 7), ("-0", 0), ("", 0), ("9223372036854775807", Int.max)])
    func sanityCheckInterval(_ value: String, _ expected: Int) throws {
        let configuration = try parse(merged(["LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": value])).configuration
        #expect(configuration.sanityCheckIntervalSeconds == expected)
    }

    // MARK: CS-API URL overrides (§2.4)

    @Test func overridesExampleFromContract() throws {
        let overrides = try CSAPIURLOverrides.parse(" example.com = https://matrix-client.example.com , example.org = https://m.example.org ")
        #expect(overrides == CSAPIURLOverrides(["example.com": "https://matrix-client.example.com", "example.org": "https://m.example.org"]))
        #expect(overrides["example.com"] == "https://matrix-client.example.com")
        #expect(overrides["example.net"] == nil)
    }

    @Test(arguments: [
        ("", [:]),
        ("a=b", ["a": "b"]),
        ("a=b=c", ["a": "b=c"]),
        ("a=1,a=2", ["a": "2"]),
        ("[2001:db8::1]:1234=https://v6.example/", ["[2001:db8::1]:1234": "https://v6.example/"]),
        ("\u{00A0}\ta\u{2003}=\n https://x/path?q=1 \u{3000}", ["a": "https://x/path?q=1"]),
        ("Example.com=u,example.com=v", ["Example.com": "u", "example.com": "v"]),
    ] as [(String, [String: String])])
    func overridesParse(_ raw: String, _ expected: [String: String]) throws {
        #expect(try CSAPIURLOverrides.parse(raw).entries == expected)
    }

    @Test(arguments: [
        ("example.com", "example.com"),
        ("=https://x", "=https://x"),
        ("example.com=", "example.com="),
        (" = ", " = "),
        ("a=b,", ""),
        (",a=b", ""),
        (",", ""),
        ("   ", "   "),
        ("a=b,\tc\t", "\tc\t"),
        ("a=b,c =\u{00A0}", "c =\u{00A0}"),
        ("a=b;c=d,\"q\"", "\"q\""),
    ])
    func overridesReject(_ raw: String, _ entry: String) {
        #expect(throws: ConfigurationError(message: "failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry \(entry.goQuoted), expected server_name=url")) {
            try CSAPIURLOverrides.parse(raw)
        }
    }

    // MARK: Job store

    @Test(arguments: [
        ([:], JobStoreLocation.sqlite(path: "/var/lib/lkjwt-fcgi/jobs.sqlite3"), [ConfigurationNotice]()),
        (["LIVEKIT_JOBS_DB": "/srv/j.db"], .sqlite(path: "/srv/j.db"), []),
        (["LIVEKIT_JOBS_DB": "", "STATE_DIRECTORY": "/var/lib/lk"], .sqlite(path: "/var/lib/lk/jobs.sqlite3"), []),
        (["STATE_DIRECTORY": "/var/lib/a:/var/lib/b"], .sqlite(path: "/var/lib/a/jobs.sqlite3"), []),
        (["STATE_DIRECTORY": "/var/lib/a/"], .sqlite(path: "/var/lib/a/jobs.sqlite3"), []),
        (["STATE_DIRECTORY": ""], .sqlite(path: "/var/lib/lkjwt-fcgi/jobs.sqlite3"), []),
        (["LIVEKIT_JOBS_DB": "/srv/j.db", "STATE_DIRECTORY": "/var/lib/lk"], .sqlite(path: "/srv/j.db"), []),
        (["LIVEKIT_JOBS_DB": ":memory:"], .memory, [ConfigurationNotice(
            level: .warning, message: "LIVEKIT_JOBS_DB is :memory:, delegated jobs are neither durable nor shared between processes")]),
        (["LIVEKIT_REDIS_URL": "redis://localhost:6379/0"], .redis(url: "redis://localhost:6379/0"), []),
        (["LIVEKIT_REDIS_URL": "redis://r", "LIVEKIT_JOBS_DB": ":memory:"], .redis(url: "redis://r"), [ConfigurationNotice(
            level: .info, message: "LIVEKIT_JOBS_DB is ignored because LIVEKIT_REDIS_URL is set", metadata: ["LIVEKIT_JOBS_DB": ":memory:"])]),
        (["LIVEKIT_REDIS_URL": "", "LIVEKIT_JOBS_DB": ":memory:"], .memory, [ConfigurationNotice(
            level: .warning, message: "LIVEKIT_JOBS_DB is :memory:, delegated jobs are neither durable nor shared between processes")]),
    ] as [([String: String], JobStoreLocation, [ConfigurationNotice])])
    func jobStore(_ extra: [String: String], _ expected: JobStoreLocation, _ expectedNotices: [ConfigurationNotice]) throws {
        let (configuration, notices) = try parse(merged(extra.merging(["LIVEKIT_FULL_ACCESS_HOMESERVERS": "example.org"]) { $1 }))
        #expect(configuration.jobStore == expected)
        #expect(notices == [keyFromVariable, secretFromVariable] + expectedNotices)
    }

    @Test(arguments: [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://user:pa55@host:6379/1", "redis://user:***@host:6379/1"),
        ("redis://:pa55@host", "redis://:***@host"),
        ("rediss://user:p:a@s:s@host:6380", "rediss://user:***@host:6380"),
        ("redis://pa55@host", "redis://***@host"),
        ("unix://user:pa55@/run/redis.sock?db=2", "unix://user:***@/run/redis.sock?db=2"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
        // rev. 2: the last `@` ends the user info wherever it stands, since a password may contain `/`
        // and `?`; over-masking a URL that is invalid anyway is the safe side.
        ("redis://host/0?x=a@b", "redis://***@b"),
        ("redis://:s3/cr#t@host", "redis://:***@host"),
        ("not a url", "not a url"),
    ])
    func redisPasswordIsMasked(_ url: String, _ expected: String) {
        #expect(JobStoreLocation.maskingPassword(in: url) == expected)
        #expect(JobStoreLocation.redis(url: url).description == expected)
    }

    @Test func jobStoreDescription() {
        #expect(JobStoreLocation.sqlite(path: "/srv/j.db").description == "sqlite:/srv/j.db")
        #expect(JobStoreLocation.memory.description == "memory")
    }

    // MARK: --check-config description

    @Test func descriptionListsEverySettingWithSecretsMasked() throws {
        let environment = [
            "LIVEKIT_URL": "wss://sfu.example.com",
            "LIVEKIT_KEY": "devkey",
            "LIVEKIT_SECRET": "TOP-SECRET-VALUE",
            "LIVEKIT_FULL_ACCESS_HOMESERVERS": "example.com example.org",
            "LIVEKIT_JWT_BIND": "[::1]:9000",
            "LIVEKIT_INSECURE_SKIP_VERIFY_TLS": "YES_I_KNOW_WHAT_I_AM_DOING",
            "SSL_CERT_FILE": "/ca.pem",
            "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "+15",
            "LIVEKIT_LOG_LEVEL": "Warning",
            "LIVEKIT_CS_API_URL_OVERRIDES": "b.example=https://b,a.example=https://a",
            "LIVEKIT_REDIS_URL": "redis://default:REDIS-PASSWORD@redis:6379/0",
            "LIVEKIT_JOBS_DB": "/ignored.db",
            "LIVEKIT_AS_TOKEN": "AS-SECRET-VALUE",
            "LIVEKIT_HS_TOKEN": "HS-SECRET-VALUE",
            "LIVEKIT_HS_SERVER_NAME": "hs.example.com",
            "LIVEKIT_CAN_UPDATE_OWN_METADATA": "true",
        ]
        let description = try parse(environment).configuration.description
        #expect(description == """
            LIVEKIT_URL=wss://sfu.example.com
            LIVEKIT_KEY=devkey
            LIVEKIT_SECRET=***
            LIVEKIT_FULL_ACCESS_HOMESERVERS=example.com,example.org
            LIVEKIT_JWT_BIND=[::1]:9000
            LIVEKIT_JWT_SOCKET_GROUP=
            LIVEKIT_INSECURE_SKIP_VERIFY_TLS=YES_I_KNOW_WHAT_I_AM_DOING
            SSL_CERT_FILE=/ca.pem
            SSL_CERT_DIR=
            LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS=15
            LIVEKIT_LOG_LEVEL=warn
            LIVEKIT_CS_API_URL_OVERRIDES=a.example=https://a,b.example=https://b
            LIVEKIT_IP_RANGE_BLOCKLIST=127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,192.0.0.0/24,169.254.0.0/16,192.88.99.0/24,198.18.0.0/15,192.0.2.0/24,198.51.100.0/24,203.0.113.0/24,224.0.0.0/4,0.0.0.0/8,::1/128,::/128,fe80::/10,fc00::/7,2001:db8::/32,ff00::/8,fec0::/10
            LIVEKIT_IP_RANGE_ALLOWLIST=
            LIVEKIT_AS_REGISTRATION_FILE=
            LIVEKIT_AS_TOKEN=***
            LIVEKIT_HS_TOKEN=***
            LIVEKIT_HS_SERVER_NAME=hs.example.com
            LIVEKIT_CAN_UPDATE_OWN_METADATA=true
            LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS=30
            LIVEKIT_REDIS_URL=redis://default:***@redis:6379/0
            LIVEKIT_JOBS_DB=
            """)
        #expect(!description.contains("SECRET-VALUE"))
        #expect(!description.contains("TOP-SECRET-VALUE"))
        #expect(!description.contains("REDIS-PASSWORD"))
    }

    /// LKJWTLogic has no YAML parser: without a registration reader a registration file cannot be used.
    @Test func registrationFileNeedsAReader() {
        #expect(parseError(merged(["LIVEKIT_AS_REGISTRATION_FILE": "/r.yaml", "LIVEKIT_HS_SERVER_NAME": "hs"]), files: ["/r.yaml": "as_token: a"])
            == "Could not parse app service registration file: no registration file reader")
    }

    @Test func descriptionOfDefaults() throws {
        let description = try parse(minimal).configuration.description
        #expect(description == """
            LIVEKIT_URL=wss://sfu.example.com
            LIVEKIT_KEY=devkey
            LIVEKIT_SECRET=***
            LIVEKIT_FULL_ACCESS_HOMESERVERS=*
            LIVEKIT_JWT_BIND=127.0.0.1:8080
            LIVEKIT_JWT_SOCKET_GROUP=
            LIVEKIT_INSECURE_SKIP_VERIFY_TLS=
            SSL_CERT_FILE=
            SSL_CERT_DIR=
            LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS=0
            LIVEKIT_LOG_LEVEL=info
            LIVEKIT_CS_API_URL_OVERRIDES=
            LIVEKIT_IP_RANGE_BLOCKLIST=127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,192.0.0.0/24,169.254.0.0/16,192.88.99.0/24,198.18.0.0/15,192.0.2.0/24,198.51.100.0/24,203.0.113.0/24,224.0.0.0/4,0.0.0.0/8,::1/128,::/128,fe80::/10,fc00::/7,2001:db8::/32,ff00::/8,fec0::/10
            LIVEKIT_IP_RANGE_ALLOWLIST=
            LIVEKIT_AS_REGISTRATION_FILE=
            LIVEKIT_AS_TOKEN=
            LIVEKIT_HS_TOKEN=
            LIVEKIT_HS_SERVER_NAME=
            LIVEKIT_CAN_UPDATE_OWN_METADATA=
            LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS=30
            LIVEKIT_REDIS_URL=
            LIVEKIT_JOBS_DB=/var/lib/lkjwt-fcgi/jobs.sqlite3
            """)
        #expect(!description.contains("devsecret"))
        let memory = Configuration(liveKitURL: "u", apiKey: "k", apiSecret: "s", jobStore: .memory).description
        #expect(memory.hasSuffix("\nLIVEKIT_REDIS_URL=\nLIVEKIT_JOBS_DB=:memory:"))
        #expect(!memory.contains("=s\n"))
    }

    // MARK: Log level (§10.1)

    @Test(arguments: [
        ("debug", Logger.Level.debug), ("DEBUG", .debug), ("Info", .info), ("info", .info), ("warn", .warning),
        ("WARN", .warning), ("warning", .warning), ("WaRnInG", .warning), ("error", .error), ("ERROR", .error),
    ])
    func logLevel(_ value: String, _ expected: Logger.Level) {
        let (level, notice) = Configuration.logLevel(from: ["LIVEKIT_LOG_LEVEL": value])
        #expect(level == expected)
        #expect(notice == nil)
    }

    @Test(arguments: [nil, ""] as [String?])
    func logLevelDefault(_ value: String?) {
        var environment: [String: String] = [:]
        environment["LIVEKIT_LOG_LEVEL"] = value
        let (level, notice) = Configuration.logLevel(from: environment)
        #expect(level == .info)
        #expect(notice == ConfigurationNotice(level: .info, message: "log level defaulting to info"))
    }

    @Test(arguments: ["trace", "critical", "notice", "verbose", " info", "info\n", "err", "2"])
    func logLevelInvalid(_ value: String) {
        let (level, notice) = Configuration.logLevel(from: ["LIVEKIT_LOG_LEVEL": value])
        #expect(level == .info)
        #expect(notice == ConfigurationNotice(
            level: .warning, message: "Invalid log level in LIVEKIT_LOG_LEVEL, defaulting to info", metadata: ["invalidValue": value]))
    }

    @Test func parseAppliesTheLogLevelButLeavesItsNoticeToLogLevelFrom() throws {
        let (configuration, notices) = try parse(merged(["LIVEKIT_LOG_LEVEL": "bogus", "LIVEKIT_FULL_ACCESS_HOMESERVERS": "a"]))
        #expect(configuration.logLevel == .info)
        #expect(notices == [keyFromVariable, secretFromVariable])
        #expect(try parse(merged(["LIVEKIT_LOG_LEVEL": "error"])).configuration.logLevel == .error)
    }

    // MARK: Go quoting

    @Test(arguments: [
        ("", #""""#),
        ("plain", #""plain""#),
        ("a\"b", #""a\"b""#),
        ("back\\slash", #""back\\slash""#),
        ("tab\tnl\ncr\r", #""tab\tnl\ncr\r""#),
        ("\u{07}\u{08}\u{0C}\u{0B}", #""\a\b\f\v""#),
        ("\u{00}\u{01}\u{1B}\u{7F}", #""\x00\x01\x1b\x7f""#),
        ("héllo wörld ✓ 日本", "\"héllo wörld ✓ 日本\""),
        ("e\u{0301}", "\"e\u{0301}\""),
        ("\u{0085}\u{00A0}\u{200B}\u{2028}\u{FEFF}", #""\u0085\u00a0\u200b\u2028\ufeff""#),
        ("\u{E000}\u{10FFFF}", #""\ue000\U0010ffff""#),
        ("😀", "\"😀\""),
        ("'single'", #""'single'""#),
    ])
    func goQuoted(_ value: String, _ expected: String) {
        #expect(value.goQuoted == expected)
    }
}
