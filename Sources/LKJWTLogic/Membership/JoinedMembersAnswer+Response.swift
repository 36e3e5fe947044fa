/// How an answer of `GET /_matrix/client/v3/rooms/<room>/joined_members` reads (notes §4.3 step 3).
/// The body is the homeserver's, but of a room anyone may fill: read strictly.
extension JoinedMembersAnswer {
    /// 200 with `{"joined": {<user ID>: {…}, …}}` → the members; 403 → forbidden; anything else failed.
    public init(status: HTTPStatus, body: [UInt8]) {
        switch status.code {
        case 200:
            guard case .object(let members)? = (try? JSONParser.parse(body))?["joined"] else {
                self = .failed("joined_members answered 200 without a `joined` object")
                return
            }
            self = .members(Set(members.map(\.key)))
        case 403:
            self = .forbidden
        default:
            self = .failed("joined_members answered HTTP \(status.code)")
        }
    }
}
