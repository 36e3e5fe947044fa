extension ClientServerAPIResolver {
    /// Why a discovered `m.homeserver.base_url` cannot be used, or nil when it can (§9.1 rev. 2): an
    /// absolute `http` or `https` URL without user info, query or fragment. Paths are appended to it
    /// verbatim, so a query or fragment would turn the delayed-event path into something else. The
    /// HTTP client that will send to it has the last word on the rest of its form (`unusableURL`).
    static func unusableBaseURL(_ url: String) -> String? {
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f || $0 == "\\" }) {
            return "contains white space, control characters or a backslash"
        }
        if url.contains("?") { return "has a query" }
        if url.contains("#") { return "has a fragment" }
        let lowercased = url.lowercased()
        guard lowercased.hasPrefix("http://") || lowercased.hasPrefix("https://") else { return "is not an absolute http or https URL" }
        let authority = url[url.firstRange(of: "://")!.upperBound...].prefix { $0 != "/" }
        if authority.isEmpty { return "has no host" }
        if authority.contains("@") { return "has user info" }
        return nil
    }
}
