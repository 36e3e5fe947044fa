import CCurl
import LKJWTLogic

extension CurlHTTPClient {
    /// libcurl is the one that will send requests to the URL, so libcurl's parser decides.
    public func unusableURL(_ url: String) -> String? {
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
