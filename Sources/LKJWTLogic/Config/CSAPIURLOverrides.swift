/// Client-server API base URLs that replace `.well-known/matrix/client` discovery for some homeservers
/// (`LIVEKIT_CS_API_URL_OVERRIDES`, contract §2.4, §9.1).
public struct CSAPIURLOverrides: Sendable, Equatable, CustomStringConvertible {
    /// Server name (compared exactly) to base URL (used verbatim).
    public var entries: [String: String]

    public init(_ entries: [String: String] = [:]) {
        self.entries = entries
    }

    public subscript(serverName: String) -> String? {
        entries[serverName]
    }

    /// `server_name=url[,server_name=url…]`. Works on Unicode scalars, as upstream works on bytes, so a
    /// combining mark after `,` or `=` cannot hide a separator.
    public static func parse(_ raw: String) throws(ConfigurationError) -> CSAPIURLOverrides {
        var entries: [String: String] = [:]
        guard !raw.isEmpty else { return CSAPIURLOverrides() }
        for entry in raw.unicodeScalars.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = entry.firstIndex(of: "=") else {
                throw .invalidCSAPIURLOverride(entry: String(Substring(entry)))
            }
            let serverName = trimmingWhitespace(entry[..<equals])
            let url = trimmingWhitespace(entry[entry.index(after: equals)...])
            guard !serverName.isEmpty, !url.isEmpty else {
                throw .invalidCSAPIURLOverride(entry: String(Substring(entry)))
            }
            entries[serverName] = url
        }
        return CSAPIURLOverrides(entries)
    }

    /// Go's `strings.TrimSpace`: Unicode white space at both ends.
    private static func trimmingWhitespace(_ scalars: Substring.UnicodeScalarView) -> String {
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(Substring(scalars[first...last]))
    }

    /// Sorted by server name so `--check-config` output is stable.
    public var description: String {
        entries.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
