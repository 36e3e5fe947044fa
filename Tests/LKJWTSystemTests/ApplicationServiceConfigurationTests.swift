import LKJWTLogic
import LKJWTSystem
import LKJWTTestSupport
import Testing

/// AS-MODE.md B1: the application-service variables, the registration file, the metadata switch,
/// and the registration `lkjwt-fcgi registration` prints.
struct ApplicationServiceConfigurationTests {
    static let base = ["LIVEKIT_URL": "wss://sfu.example.com", "LIVEKIT_KEY": "devkey", "LIVEKIT_SECRET": "devsecret"]
    static let partlySet =
        "The app service token(s) (LIVEKIT_AS_TOKEN/LIVEKIT_HS_TOKEN or LIVEKIT_AS_REGISTRATION_FILE) and LIVEKIT_HS_SERVER_NAME must either all be set or all be left empty"

    static func parse(
        _ extra: [String: String], files: [String: String] = [:]
    ) throws(ConfigurationError) -> (configuration: Configuration, notices: [ConfigurationNotice]) {
        try Configuration.parse(environment: base.merging(extra) { $1 }, files: files, readRegistration: YAMLRegistrationReader.tokens(fromYAML:))
    }

    static func parseError(_ extra: [String: String], files: [String: String] = [:]) -> String? {
        Configuration.parseError(environment: base.merging(extra) { $1 }, files: files, readRegistration: YAMLRegistrationReader.tokens(fromYAML:))
    }

    // MARK: Variables

    @Test func noneSetLeavesTheModeOffWithoutANotice() throws {
        let (configuration, notices) = try Self.parse([:])
        #expect(configuration.applicationService == nil)
        #expect(!notices.contains { $0.message.contains("application service") })
    }

    @Test func tokensFromTheEnvironmentAreTrimmedAsRustTrims() throws {
        let (configuration, notices) = try Self.parse([
            "LIVEKIT_AS_TOKEN": "\u{2003}\tas-token \n", "LIVEKIT_HS_TOKEN": " hs-token\u{00A0}", "LIVEKIT_HS_SERVER_NAME": "hs.example.com",
        ])
        #expect(configuration.applicationService == ApplicationServiceSettings(asToken: "as-token", hsToken: "hs-token", serverName: "hs.example.com"))
        #expect(notices.contains(ConfigurationNotice(level: .info, message: "Using application service configuration from LIVEKIT_AS_TOKEN and LIVEKIT_HS_TOKEN")))
    }

    /// The server name is used verbatim, as upstream does.
    @Test func serverNameIsNotTrimmed() throws {
        let settings = try Self.parse(["LIVEKIT_AS_TOKEN": "a", "LIVEKIT_HS_TOKEN": "h", "LIVEKIT_HS_SERVER_NAME": "hs.example.com "]).configuration.applicationService
        #expect(settings?.serverName == "hs.example.com ")
    }

    @Test(arguments: [
        ["LIVEKIT_AS_TOKEN": "a"],
        ["LIVEKIT_HS_TOKEN": "h"],
        ["LIVEKIT_HS_SERVER_NAME": "hs.example.com"],
        ["LIVEKIT_AS_TOKEN": "a", "LIVEKIT_HS_TOKEN": "h"],
        ["LIVEKIT_AS_TOKEN": "a", "LIVEKIT_HS_SERVER_NAME": "hs.example.com"],
        ["LIVEKIT_HS_TOKEN": "h", "LIVEKIT_HS_SERVER_NAME": "hs.example.com"],
        // Only white space is empty after trimming.
        ["LIVEKIT_AS_TOKEN": " \n", "LIVEKIT_HS_TOKEN": "h", "LIVEKIT_HS_SERVER_NAME": "hs.example.com"],
    ])
    func allOrNone(_ extra: [String: String]) {
        #expect(Self.parseError(extra) == Self.partlySet)
    }

    /// Row 13 comes after the CS-API overrides (row 7) and the address lists (row 12).
    @Test func parsedAfterTheOverridesAndAddressLists() {
        #expect(Self.parseError(["LIVEKIT_AS_TOKEN": "a", "LIVEKIT_CS_API_URL_OVERRIDES": "x"])?.hasPrefix("failed parsing LIVEKIT_CS_API_URL_OVERRIDES") == true)
        #expect(Self.parseError(["LIVEKIT_AS_TOKEN": "a", "LIVEKIT_IP_RANGE_ALLOWLIST": "nope"])?.hasPrefix("Invalid LIVEKIT_IP_RANGE_ALLOWLIST") == true)
        #expect(Self.parseError(["LIVEKIT_AS_TOKEN": "a", "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "-1"])?.hasPrefix("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS") == true)
    }

    @Test(arguments: [("true", true), ("TRUE", false), ("True", false), ("1", false), ("yes", false), ("", false), (" true", false)])
    func metadataSwitch(_ value: String, _ expected: Bool) throws {
        #expect(try Self.parse(["LIVEKIT_CAN_UPDATE_OWN_METADATA": value]).configuration.canUpdateOwnMetadata == expected)
    }

    @Test func metadataSwitchIsOffWhenUnset() throws {
        #expect(try Self.parse([:]).configuration.canUpdateOwnMetadata == false)
    }

    // MARK: Registration file

    static let registration = """
        id: "lkjwt-fcgi"
        as_token: "file-as-token"
        hs_token: file-hs-token
        sender_localpart: "_lkjwt_fcgi"
        namespaces:
          users:
            - exclusive: false
              regex: '@.*:hs\\.example\\.com'
        url: null

        """

    @Test func registrationFileWinsOverTheTokenVariables() throws {
        let (configuration, notices) = try Self.parse(
            [
                "LIVEKIT_AS_REGISTRATION_FILE": "/etc/reg.yaml", "LIVEKIT_AS_TOKEN": "env-as", "LIVEKIT_HS_TOKEN": "env-hs",
                "LIVEKIT_HS_SERVER_NAME": "hs.example.com",
            ], files: ["/etc/reg.yaml": Self.registration])
        #expect(configuration.applicationService == ApplicationServiceSettings(
            asToken: "file-as-token", hsToken: "file-hs-token", serverName: "hs.example.com", tokenSource: .registrationFile(path: "/etc/reg.yaml")))
        #expect(notices.contains(ConfigurationNotice(
            level: .info, message: "Using application service configuration from LIVEKIT_AS_REGISTRATION_FILE", metadata: ["path": "/etc/reg.yaml"])))
        #expect(configuration.description.contains("LIVEKIT_AS_REGISTRATION_FILE=/etc/reg.yaml\n"))
        #expect(!configuration.description.contains("file-as-token"))
        #expect(!configuration.description.contains("file-hs-token"))
    }

    /// The server name never comes from the file: without the variable the configuration is partial.
    @Test func registrationFileWithoutServerNameIsPartial() {
        #expect(Self.parseError(["LIVEKIT_AS_REGISTRATION_FILE": "/r.yaml"], files: ["/r.yaml": Self.registration]) == Self.partlySet)
    }

    @Test func unreadableRegistrationFileGivesTheOSError() {
        #expect(Self.parseError(["LIVEKIT_AS_REGISTRATION_FILE": "/missing.yaml", "LIVEKIT_HS_SERVER_NAME": "hs"]) == "open /missing.yaml: no such file or directory")
    }

    @Test(arguments: [
        ("- a\n- b\n", "Could not parse app service registration file: invalid root element"),
        ("just text\n", "Could not parse app service registration file: invalid root element"),
        ("", "Could not parse app service registration file: invalid root element"),
        ("hs_token: h\n", "Could not parse app service registration file: no as_token property"),
        ("as_token: a\n", "Could not parse app service registration file: no hs_token property"),
        ("as_token: 123\nhs_token: h\n", "Could not parse app service registration file: invalid value for as_token property"),
        ("as_token: a\nhs_token: true\n", "Could not parse app service registration file: invalid value for hs_token property"),
        ("as_token: a\nhs_token:\n", "Could not parse app service registration file: invalid value for hs_token property"),
        ("as_token: ~\nhs_token: h\n", "Could not parse app service registration file: invalid value for as_token property"),
        ("as_token: 1.5e3\nhs_token: h\n", "Could not parse app service registration file: invalid value for as_token property"),
        ("as_token: [a]\nhs_token: h\n", "Could not parse app service registration file: invalid value for as_token property"),
        ("as_token: {a: b}\nhs_token: h\n", "Could not parse app service registration file: invalid value for as_token property"),
        ("as_token: !!int 5\nhs_token: h\n", "Could not parse app service registration file: invalid value for as_token property"),
    ])
    func registrationFileErrors(_ text: String, _ expected: String) {
        #expect(Self.parseError(["LIVEKIT_AS_REGISTRATION_FILE": "/r.yaml", "LIVEKIT_HS_SERVER_NAME": "hs"], files: ["/r.yaml": text]) == expected)
    }

    @Test func malformedYAMLNamesTheParsersProblemAndPlace() throws {
        let message = try #require(Self.parseError(["LIVEKIT_AS_REGISTRATION_FILE": "/r.yaml", "LIVEKIT_HS_SERVER_NAME": "hs"], files: ["/r.yaml": "as_token: \"a\nhs_token: [\n"]))
        #expect(message.hasPrefix("Could not parse app service registration file: "))
        #expect(message.contains("line"))
    }

    @Test(arguments: [
        ("as_token: '123'\nhs_token: \"true\"\n", "123", "true"),
        ("as_token: |\n  block\nhs_token: 0x1g\n", "block", "0x1g"),
        ("as_token: &t shared\nhs_token: *t\n", "shared", "shared"),
        ("as_token: first\nas_token: second\nhs_token: h\n", "second", "h"),
        ("as_token: a\u{2003}\nhs_token: \" h \"\n", "a", "h"),
    ])
    func registrationStringForms(_ text: String, _ asToken: String, _ hsToken: String) throws {
        let settings = try Self.parse(["LIVEKIT_AS_REGISTRATION_FILE": "/r.yaml", "LIVEKIT_HS_SERVER_NAME": "hs"], files: ["/r.yaml": text])
            .configuration.applicationService
        // Values are trimmed like the variables (block scalars lose their final line break).
        #expect(settings?.asToken == asToken)
        #expect(settings?.hsToken == hsToken)
    }

    // MARK: lkjwt-fcgi registration

    @Test func printedRegistrationLoadsBackAndHasTheKeysSynapseReads() throws {
        let registration = try ApplicationServiceRegistration(
            serverName: "matrix.example.com:8448", proxyURL: "http://127.0.0.1:8080/livekit/jwt", random: SystemRandomSource())
        let yaml = registration.yaml
        let tokens = try YAMLRegistrationReader.tokens(fromYAML: yaml)
        #expect(tokens.asToken == registration.asToken)
        #expect(tokens.hsToken == registration.hsToken)
        #expect(tokens.asToken != tokens.hsToken)
        for token in [tokens.asToken, tokens.hsToken] {
            #expect(token.utf8.count == 43)
            #expect(token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
        #expect(yaml.contains("\nid: \"lkjwt-fcgi\"\n"))
        #expect(yaml.contains("\nurl: null\n"))
        #expect(yaml.contains("\nrate_limited: false\n"))
        #expect(yaml.contains("\nsender_localpart: \"_lkjwt_fcgi\"\n"))
        #expect(yaml.contains("      regex: \"^@.*:matrix\\\\.example\\\\.com:8448$\"\n"))
        #expect(yaml.contains("\nio.element.msc4502.scopes:\n  - \"urn:matrix:client:io.element.msc4502:rooms:is_joined\"\n"))
        #expect(yaml.contains("\nio.element.msc4512.proxy_prefix: \"rtc/livekit\"\n"))
        #expect(yaml.contains("\nio.element.msc4512.proxy_url: \"http://127.0.0.1:8080/livekit/jwt\"\n"))
        // Upstream README's keys, which Synapse 1.163 ignores, are not used.
        #expect(!yaml.contains("\nproxy_prefix"))
        #expect(!yaml.contains("\nscopes"))
    }

    @Test func usersRegexEscapesEveryMetacharacter() throws {
        let registration = try ApplicationServiceRegistration(serverName: "[::1]:8448", proxyURL: "https://hs", random: FixedRandomSource(byte: 1))
        #expect(registration.usersRegex == #"^@.*:\[::1\]:8448$"#)
        #expect(registration.id == "lkjwt-fcgi")
    }

    @Test(arguments: [
        ("", "https://x", "lkjwt-fcgi"), ("a b", "https://x", "lkjwt-fcgi"), ("@a:b", "https://x", "lkjwt-fcgi"), ("a/b", "https://x", "lkjwt-fcgi"),
        ("hs", "", "lkjwt-fcgi"), ("hs", "ftp://x", "lkjwt-fcgi"), ("hs", "http://", "lkjwt-fcgi"), ("hs", "https://x?q", "lkjwt-fcgi"),
        ("hs", "https://x y", "lkjwt-fcgi"), ("hs", "https://x", ""), ("hs", "https://x", "a|b"),
    ])
    func registrationRefusesWhatSynapseWouldRefuse(_ serverName: String, _ url: String, _ id: String) {
        #expect(throws: ApplicationServiceRegistration.InvalidArgument.self) {
            try ApplicationServiceRegistration(id: id, serverName: serverName, proxyURL: url, random: FixedRandomSource(byte: 0))
        }
    }
}
