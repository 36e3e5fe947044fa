/// `GET /_matrix/client/v3/rooms/<room>/joined_members` (notes §4.3 step 3): the request and how its
/// answer reads. The body is the homeserver's, but of a room anyone may fill: read strictly, bounded.
extension JoinedMembersAnswer {
    /// Large public rooms have tens of thousands of members at some 100 bytes each.
    public static let maximumResponseSize = 16 << 20

    /// The room ID goes in as one percent-encoded path segment.
    public static func path(room: String) -> String {
        "/_matrix/client/v3/rooms/\(PercentEncoding.encode(room))/joined_members"
    }

    /// 200 with `{"joined": {<user ID>: {…}, …}}` → the members; 403 → forbidden; anything else failed.
    public init(status: Int, body: [UInt8]) {
        switch status {
        case 200:
            guard case .object(let members)? = (try? JSONParser.parse(body))?["joined"] else {
                self = .failed("joined_members answered 200 without a `joined` object")
                return
            }
            self = .members(Set(members.map(\.key)))
        case 403:
            self = .forbidden
        default:
            self = .failed("joined_members answered HTTP \(status)")
        }
    }
}
