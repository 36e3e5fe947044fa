import CCurl
import Synchronization

/// `HTTPClient` over libcurl. Easy handles are pooled and reused, and each keeps its connection
/// cache, so a worker thread talking to the same homeserver again reuses the TLS connection.
public final class CurlHTTPClient: HTTPClient {
    private let tls: TLSSettings
    /// Idle handles; at most one per concurrent caller is ever created.
    private let idleHandles = Mutex<[EasyHandle]>([])

    /// Call once at start-up, before threads exist (curl_global_init is not thread-safe everywhere).
    public init(tls: TLSSettings) {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        self.tls = tls
    }

    public func send(_ request: OutboundRequest) throws(OutboundError) -> OutboundResponse {
        let handle = idleHandles.withLock { $0.popLast() } ?? EasyHandle()
        defer { idleHandles.withLock { $0.append(handle) } }
        return try handle.perform(request, tls: tls)
    }
}

/// One libcurl easy handle; used by one thread at a time.
final class EasyHandle: @unchecked Sendable {
    private let curl: UnsafeMutableRawPointer

    init() {
        guard let curl = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.curl = curl
    }

    deinit {
        curl_easy_cleanup(curl)
    }

    func perform(_ request: OutboundRequest, tls: TLSSettings) throws(OutboundError) -> OutboundResponse {
        // Reset keeps live connections, the DNS and the TLS session caches.
        curl_easy_reset(curl)
        let collector = ResponseCollector(limit: request.maximumResponseSize)
        var headerList: UnsafeMutablePointer<curl_slist>?
        var connectTo: UnsafeMutablePointer<curl_slist>?
        defer {
            curl_slist_free_all(headerList)
            curl_slist_free_all(connectTo)
        }

        _ = lk_curl_setopt_string(curl, CURLOPT_URL, request.url)
        _ = lk_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        // At a timeout during name resolution, leave the resolver thread to finish alone instead of
        // waiting for it: a nameserver that never answers would hold us for the resolver's own
        // 5 s × 2 attempts, past the request's budget (§13.2).
        _ = lk_curl_setopt_long(curl, CURLOPT_QUICK_EXIT, 1)
        _ = lk_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = lk_curl_setopt_string(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        _ = lk_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeout.milliseconds)))
        _ = lk_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(request.connectTimeout.milliseconds)))
        _ = lk_curl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, request.maximumRedirects > 0 ? 1 : 0)
        _ = lk_curl_setopt_long(curl, CURLOPT_MAXREDIRS, request.maximumRedirects)
        _ = lk_curl_setopt_long(curl, CURLOPT_MAXFILESIZE, request.maximumResponseSize)
        if tls.skipVerification {
            _ = lk_curl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0)
            _ = lk_curl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0)
        } else {
            if let caFile = tls.caFile { _ = lk_curl_setopt_string(curl, CURLOPT_CAINFO, caFile) }
            if let caDirectory = tls.caDirectory { _ = lk_curl_setopt_string(curl, CURLOPT_CAPATH, caDirectory) }
        }

        if let address = request.connectAddress {
            // "URL host:URL port:connect host:connect port"; the URL keeps the name TLS checks.
            let (urlHost, urlPort) = EasyHandle.authority(of: request.url)
            let target = address.host.contains(":") ? "[\(address.host)]" : address.host
            connectTo = curl_slist_append(nil, "\(urlHost):\(urlPort):\(target):\(address.port)")
            _ = lk_curl_setopt_slist(curl, CURLOPT_CONNECT_TO, connectTo)
        }

        // An empty `Expect:` stops curl from waiting a second for `100 Continue` on POST bodies.
        for header in request.headers + [("Expect", "")] {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        _ = lk_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList)

        switch request.method {
        case "GET":
            _ = lk_curl_setopt_long(curl, CURLOPT_HTTPGET, 1)
        case "POST":
            _ = lk_curl_setopt_long(curl, CURLOPT_POST, 1)
            _ = lk_curl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, request.body.count)
            // COPYPOSTFIELDS copies (POSTFIELDSIZE bytes), so the buffer need not outlive this call;
            // an empty body still needs a non-NULL pointer, or curl reads the body from stdin.
            var body = request.body.isEmpty ? [0] : request.body
            body.withUnsafeMutableBytes { buffer in
                _ = lk_curl_setopt_pointer(curl, CURLOPT_COPYPOSTFIELDS, buffer.baseAddress)
            }
        default:
            _ = lk_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        }

        let context = Unmanaged.passUnretained(collector).toOpaque()
        _ = lk_curl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, { data, size, count, context in
            let collector = Unmanaged<ResponseCollector>.fromOpaque(context!).takeUnretainedValue()
            return collector.appendBody(data, size * count) ? size * count : 0
        })
        _ = lk_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, context)
        _ = lk_curl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, { data, size, count, context in
            let collector = Unmanaged<ResponseCollector>.fromOpaque(context!).takeUnretainedValue()
            collector.appendHeaderLine(data, size * count)
            return size * count
        })
        _ = lk_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, context)

        let code = withExtendedLifetime(collector) { curl_easy_perform(curl) }
        var status = 0
        _ = lk_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)

        guard code == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(code))
            if code == CURLE_FILESIZE_EXCEEDED || collector.exceededLimit {
                throw OutboundError(.responseTooLarge, "answer larger than \(request.maximumResponseSize) bytes")
            }
            // No status line means no HTTP answer at all: the next target may be tried.
            throw OutboundError(status == 0 ? .transport : .timeout, message)
        }
        return OutboundResponse(status: status, headers: collector.headers, body: collector.body)
    }

    /// Host and port of an `https://host:port/…` URL, as CURLOPT_CONNECT_TO matches them.
    static func authority(of url: String) -> (host: String, port: String) {
        var rest = Substring(url)
        if let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") { rest = rest[rest.index(colon, offsetBy: 3)...] }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let defaultPort = url.hasPrefix("https") ? "443" : "80"
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            let host = authority[...close]
            let after = authority[authority.index(after: close)...]
            return (String(host), after.hasPrefix(":") ? String(after.dropFirst()) : defaultPort)
        }
        if let colon = authority.lastIndex(of: ":") {
            return (String(authority[..<colon]), String(authority[authority.index(after: colon)...]))
        }
        return (String(authority), defaultPort)
    }
}

/// Gathers one transfer's answer; only the last response's headers are kept (redirects).
final class ResponseCollector {
    let limit: Int
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    var exceededLimit = false

    init(limit: Int) {
        self.limit = limit
    }

    func appendBody(_ data: UnsafeMutablePointer<CChar>?, _ length: Int) -> Bool {
        guard let data, length > 0 else { return true }
        guard body.count + length <= limit else {
            exceededLimit = true
            return false
        }
        data.withMemoryRebound(to: UInt8.self, capacity: length) { body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length)) }
        return true
    }

    func appendHeaderLine(_ data: UnsafeMutablePointer<CChar>?, _ length: Int) {
        guard let data, length > 0 else { return }
        let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
            String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
        }.trimmingCharacters(in: "\r\n")
        if line.hasPrefix("HTTP/") {
            headers = []
        } else if let colon = line.firstIndex(of: ":") {
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            headers.append((String(line[..<colon]), String(value)))
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var slice = Substring(self)
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
