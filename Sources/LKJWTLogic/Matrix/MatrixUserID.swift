/// A user ID as the application-service endpoints check it (AS-MODE-NOTES §2.4 step 4): `@`, a
/// non-empty localpart, `:`, a non-empty server name. Nothing more is validated: the homeserver
/// authenticated the user, and the server part is only compared, never contacted.
public struct MatrixUserID: Sendable, Equatable {
    public let localpart: Substring
    /// Everything after the first `:`, port included.
    public let serverName: Substring

    public init?(_ text: String) {
        guard text.hasPrefix("@"), let colon = text.firstIndex(of: ":") else { return nil }
        let localpart = text[text.index(after: text.startIndex)..<colon]
        let serverName = text[text.index(after: colon)...]
        guard !localpart.isEmpty, !serverName.isEmpty else { return nil }
        self.localpart = localpart
        self.serverName = serverName
    }
}
