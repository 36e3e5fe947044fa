import CCurl

extension ClientServerAPIResolver {
    /// Why a discovered `m.homeserver.base_url` cannot be used, or nil when it can (§9.1 rev. 2): an
    /// absolute `http` or `https` URL without user info, query or fragment. Paths are appended to it
    /// verbatim, so a query or fragment would turn the delayed-event path into something else.
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
        // libcurl is the one that will send requests to it, so libcurl has the last word on its form.
        guard let handle = curl_url() else { return "could not be parsed (out of memory)" }
        defer { curl_url_cleanup(handle) }
        let parsed = curl_url_set(handle, CURLUPART_URL, url, 0)
        guard parsed == CURLUE_OK else { return "is not a URL (\(String(cString: curl_url_strerror(parsed))))" }
        var host: UnsafeMutablePointer<CChar>?
        guard curl_url_get(handle, CURLUPART_HOST, &host, 0) == CURLUE_OK, let host else { return "has no host" }
        let hostIsEmpty = host.pointee == 0
        curl_free(host)
        return hostIsEmpty ? "has no host" : nil
    }
}
