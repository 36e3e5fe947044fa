import LKJWTTestSupport
import Logging
import Synchronization
import Testing

@testable import LKJWTLogic

/// Contract §13.4: request strings longer than 255 bytes are refused after T1–T8 and before any
/// outgoing call; values from outside are cut to 255 bytes in the log.
struct RequestLimitsTests {
    typealias Harness = AuthorizationServiceTests.Harness
    static let long = String(repeating: "a", count: 256)
    /// 128 two-byte characters: 256 bytes, though only 128 characters.
    static let longInBytes = String(repeating: "é", count: 128)
    static let tooLong = #"{"errcode":"M_BAD_JSON","error":"The request body has a value longer than 255 bytes"}"# + "\n"
    static let delegation = #","delay_id":"syd_1","delay_timeout":8000"#

    static func tokenBody(_ field: String, _ value: String, delegating: Bool) -> String {
        let extra = field == "delay_id" ? #","delay_id":"\#(value)","delay_timeout":8000"# : (delegating ? delegation : "")
        switch field {
        case "room_id": return AuthorizationServiceTests.tokenBody(roomID: value, extra: extra)
        case "slot_id": return AuthorizationServiceTests.tokenBody(slotID: value, extra: extra)
        case "member.id": return AuthorizationServiceTests.tokenBody(member: value, extra: extra)
        case "member.claimed_user_id": return AuthorizationServiceTests.tokenBody(user: value, extra: extra)
        case "member.claimed_device_id": return AuthorizationServiceTests.tokenBody(device: value, extra: extra)
        case "openid_token.matrix_server_name": return AuthorizationServiceTests.tokenBody(server: value, extra: extra)
        default: return AuthorizationServiceTests.tokenBody(extra: extra)
        }
    }

    static let tokenFields = [
        "room_id", "slot_id", "member.id", "member.claimed_user_id", "member.claimed_device_id", "delay_id", "openid_token.matrix_server_name",
    ]

    @Test(arguments: tokenFields, ["/get_token", "/delegate_delayed_leave"])
    func overlongTokenRequestValuesAreRefusedBeforeAnyCall(field: String, path: String) {
        for value in [Self.long, Self.longInBytes] {
            let harness = Harness(delegation: AuthorizationServiceTests.RecordingDelegation(resolvable: true))
            let response = harness.post(path, Self.tokenBody(field, value, delegating: path == "/delegate_delayed_leave"))
            #expect(response.status == 400)
            #expect(response.bodyText == Self.tooLong)
            #expect(response.headers["Access-Control-Allow-Origin"] == "*")
            #expect(harness.http.requests.isEmpty, "no outgoing call for \(field)")
        }
    }

    @Test(arguments: ["room", "device_id", "delay_id", "openid_token.matrix_server_name"])
    func overlongLegacyValuesAreRefusedBeforeAnyCall(field: String) {
        var members = ["room": "!room:example.com", "device_id": "DEVICE", "delay_id": "syd_1", "openid_token.matrix_server_name": AuthorizationServiceTests.fullServer]
        members[field] = Self.long
        let body = #"{"room":"\#(members["room"]!)","device_id":"\#(members["device_id"]!)","delay_id":"\#(members["delay_id"]!)","delay_timeout":8000,"openid_token":{"access_token":"good-alice","matrix_server_name":"\#(members["openid_token.matrix_server_name"]!)"}}"#
        let harness = Harness(delegation: AuthorizationServiceTests.RecordingDelegation(resolvable: true))
        let response = harness.post("/sfu/get", body)
        #expect(response.bodyText == Self.tooLong)
        #expect(harness.http.requests.isEmpty)
    }

    @Test func valuesOfExactly255BytesPass() {
        let harness = Harness()
        let response = harness.post("/get_token", AuthorizationServiceTests.tokenBody(
            roomID: String(repeating: "r", count: 255), slotID: String(repeating: "s", count: 255), device: String(repeating: "é", count: 127) + "d",
            member: String(repeating: "m", count: 255)))
        #expect(response.status == 200)
    }

    @Test func theValidationTextsComeFirst() {
        let harness = Harness()
        let response = harness.post("/get_token", AuthorizationServiceTests.tokenBody(roomID: "", slotID: Self.long))
        #expect(response.bodyText == #"{"errcode":"M_BAD_JSON","error":"The request body is missing `room_id` or `slot_id`"}"# + "\n")
        let partialDelay = harness.post("/get_token", AuthorizationServiceTests.tokenBody(member: Self.long, extra: #","delay_id":"d""#))
        #expect(partialDelay.bodyText.contains("`delay_id` or `delay_timeout`"))
    }

    @Test func loggedValuesAreCutTo255Bytes() {
        #expect(Logger.MetadataValue.untrusted("short") == .string("short"))
        #expect(Logger.MetadataValue.untrusted(String(repeating: "x", count: 10_000)) == .string(String(repeating: "x", count: 255)))
        // A two-byte character never split in the middle: 127 of them (254 bytes) fit, the 128th does not.
        #expect(Logger.MetadataValue.untrusted(String(repeating: "é", count: 200)) == .string(String(repeating: "é", count: 127)))
        #expect("ab😀".cutToUTF8Bytes(5) == "ab")
        #expect("ab😀".cutToUTF8Bytes(6) == "ab😀")
    }

    /// A homeserver answering with an enormous user ID cannot write it into the log whole.
    @Test func remoteTextsAreCutInTheLog() {
        let records = LogRecords()
        let http = ScriptedHTTPClient { _ throws(OutboundError) in .json(200, #"{"sub":"@\#(String(repeating: "z", count: 5000)):elsewhere.example"}"#) }
        let service = AuthorizationService(
            configuration: Configuration(liveKitURL: "wss://sfu.example.com", apiKey: "k", apiSecret: "s"),
            dependencies: .init(http: http, clock: FixedClock(), srv: TableSRVResolver([:]), random: FixedRandomSource(byte: 0), addressRules: .unrestricted), logger: Logger(label: "test", factory: { _ in records }))
        let response = service.respond(to: Request(method: "POST", path: "/get_token", body: .bytes(Array(AuthorizationServiceTests.tokenBody().utf8))))
        #expect(response.status == 401)
        let values = records.entries.flatMap { $0.metadata.values.map { "\($0)" } }
        #expect(values.contains { $0.contains("zzzz") }, "the reason is logged")
        #expect(values.allSatisfy { $0.utf8.count <= 255 })
    }
}

/// Keeps every log record, for tests that look at what was logged.
struct LogRecords: LogHandler {
    struct Entry: Sendable {
        let message: String
        let metadata: Logger.Metadata
    }

    private final class Storage: Sendable {
        let entries = Mutex<[Entry]>([])
    }

    private let storage = Storage()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        storage.entries.withLock { $0.append(Entry(message: "\(event.message)", metadata: metadata.merging(event.metadata ?? [:]) { $1 })) }
    }

    var entries: [Entry] { storage.entries.withLock { $0 } }
}
