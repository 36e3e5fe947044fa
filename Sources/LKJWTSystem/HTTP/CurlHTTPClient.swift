import CCurl
import Glibc
import LKJWTLogic
import Logging
import Synchronization

/// `HTTPClient` over libcurl. Easy handles are pooled and reused, and each keeps its connection
/// cache, so a worker thread talking to the same homeserver again reuses the TLS connection.
public final class CurlHTTPClient: HTTPClient {
    private let tls: TLSSettings
    private let logger: Logger
    /// Idle handles; at most one per concurrent caller is ever created. Requests under an address
    /// policy get handles of their own, so they never reuse a connection that an unchecked request
    /// (the operator's destinations, exempt servers) opened to an address the policy blocks.
    private let idleHandles = Mutex<[Bool: [EasyHandle]]>([:])

    /// libcurl is loaded and initialised on first use (`CurlLibrary`); long-running processes load it
    /// at start-up, before their threads.
    public init(tls: TLSSettings, logger: Logger) {
        self.tls = tls
        self.logger = logger
    }

    public func send(_ request: OutboundRequest) throws(OutboundError) -> OutboundResponse {
        let policed = request.addressPolicy != nil
        let handle = idleHandles.withLock { $0[policed]?.popLast() } ?? EasyHandle()
        defer { idleHandles.withLock { $0[policed, default: []].append(handle) } }
        return try handle.perform(request, tls: tls, logger: logger)
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

    func perform(_ request: OutboundRequest, tls: TLSSettings, logger: Logger) throws(OutboundError) -> OutboundResponse {
        // Reset keeps live connections, the DNS and the TLS session caches.
        curl_easy_reset(curl)
        let collector = ResponseCollector(limit: request.maximumResponseSize)
        let gate = request.addressPolicy.map { ConnectionGate(policy: $0, request: request, logger: logger) }
        var headerList: UnsafeMutablePointer<curl_slist>?
        var connectTo: UnsafeMutablePointer<curl_slist>?
        defer {
            curl_slist_free_all(headerList)
            curl_slist_free_all(connectTo)
        }

        try set(CURLOPT_URL, lk_curl_setopt_string(curl, CURLOPT_URL, request.url))
        try set(CURLOPT_NOSIGNAL, lk_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1))
        // At a timeout during name resolution, leave the resolver thread to finish alone instead of
        // waiting for it: a nameserver that never answers would hold us for the resolver's own
        // 5 s × 2 attempts, past the request's budget (§13.2).
        try set(CURLOPT_QUICK_EXIT, lk_curl_setopt_long(curl, CURLOPT_QUICK_EXIT, 1))
        try set(CURLOPT_PROTOCOLS_STR, lk_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"))
        let redirectProtocols = request.redirectsOnlyToHTTPS ? "https" : "http,https"
        try set(CURLOPT_REDIR_PROTOCOLS_STR, lk_curl_setopt_string(curl, CURLOPT_REDIR_PROTOCOLS_STR, redirectProtocols))
        try set(CURLOPT_TIMEOUT_MS, lk_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeout.milliseconds))))
        try set(CURLOPT_CONNECTTIMEOUT_MS, lk_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(request.connectTimeout.milliseconds))))
        try set(CURLOPT_FOLLOWLOCATION, lk_curl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, request.maximumRedirects > 0 ? 1 : 0))
        try set(CURLOPT_MAXREDIRS, lk_curl_setopt_long(curl, CURLOPT_MAXREDIRS, max(0, request.maximumRedirects)))
        try set(CURLOPT_MAXFILESIZE, lk_curl_setopt_long(curl, CURLOPT_MAXFILESIZE, request.maximumResponseSize))
        if tls.skipVerification {
            try set(CURLOPT_SSL_VERIFYPEER, lk_curl_setopt_long(curl, CURLOPT_SSL_VERIFYPEER, 0))
            try set(CURLOPT_SSL_VERIFYHOST, lk_curl_setopt_long(curl, CURLOPT_SSL_VERIFYHOST, 0))
        } else {
            if let caFile = tls.caFile { try set(CURLOPT_CAINFO, lk_curl_setopt_string(curl, CURLOPT_CAINFO, caFile)) }
            if let caDirectory = tls.caDirectory { try set(CURLOPT_CAPATH, lk_curl_setopt_string(curl, CURLOPT_CAPATH, caDirectory)) }
        }

        if let gate {
            // Every socket of the transfer (each address tried, each redirect) is opened here, after
            // name resolution, so neither DNS answers nor redirects can lead past the policy.
            try set(CURLOPT_OPENSOCKETFUNCTION, lk_curl_setopt_opensocket_callback(curl) { context, _, address in
                guard let context, let address else { return CURL_SOCKET_BAD }
                return Unmanaged<ConnectionGate>.fromOpaque(context).takeUnretainedValue().open(address)
            })
            try set(CURLOPT_OPENSOCKETDATA, lk_curl_setopt_pointer(curl, CURLOPT_OPENSOCKETDATA, Unmanaged.passUnretained(gate).toOpaque()))
            // Through a proxy (http_proxy and friends in the environment) the socket would go to the
            // proxy and the real destination would never be checked.
            try set(CURLOPT_PROXY, lk_curl_setopt_string(curl, CURLOPT_PROXY, ""))
        }

        if let address = request.connectAddress {
            // "URL host:URL port:connect host:connect port"; the URL keeps the name TLS checks.
            let (urlHost, urlPort) = EasyHandle.authority(of: request.url)
            let target = address.host.utf8.contains(UInt8(ascii: ":")) ? "[\(address.host)]" : address.host
            connectTo = curl_slist_append(nil, "\(urlHost):\(urlPort):\(target):\(address.port)")
            try set(CURLOPT_CONNECT_TO, lk_curl_setopt_slist(curl, CURLOPT_CONNECT_TO, connectTo))
        }

        // An empty `Expect:` stops curl from waiting a second for `100 Continue` on POST bodies.
        for header in request.headers + [(name: "Expect", value: "")] {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        try set(CURLOPT_HTTPHEADER, lk_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList))

        switch request.method {
        case .get:
            try set(CURLOPT_HTTPGET, lk_curl_setopt_long(curl, CURLOPT_HTTPGET, 1))
        case .post:
            try set(CURLOPT_POST, lk_curl_setopt_long(curl, CURLOPT_POST, 1))
            try set(CURLOPT_POSTFIELDSIZE, lk_curl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, request.body.count))
            // COPYPOSTFIELDS copies (POSTFIELDSIZE bytes), so the buffer need not outlive this call;
            // an empty body still needs a non-NULL pointer, or curl reads the body from stdin.
            var body = request.body.isEmpty ? [0] : request.body
            let copied = body.withUnsafeMutableBytes { buffer in
                lk_curl_setopt_pointer(curl, CURLOPT_COPYPOSTFIELDS, buffer.baseAddress)
            }
            try set(CURLOPT_COPYPOSTFIELDS, copied)
        default:
            try set(CURLOPT_CUSTOMREQUEST, lk_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method.rawValue))
        }

        let context = Unmanaged.passUnretained(collector).toOpaque()
        try set(CURLOPT_WRITEFUNCTION, lk_curl_setopt_data_callback(curl, CURLOPT_WRITEFUNCTION, { data, size, count, context in
            let collector = Unmanaged<ResponseCollector>.fromOpaque(context!).takeUnretainedValue()
            return collector.appendBody(data, size * count) ? size * count : 0
        }))
        try set(CURLOPT_WRITEDATA, lk_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, context))
        try set(CURLOPT_HEADERFUNCTION, lk_curl_setopt_data_callback(curl, CURLOPT_HEADERFUNCTION, { data, size, count, context in
            let collector = Unmanaged<ResponseCollector>.fromOpaque(context!).takeUnretainedValue()
            collector.appendHeaderLine(data, size * count)
            return size * count
        }))
        try set(CURLOPT_HEADERDATA, lk_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, context))

        let code = withExtendedLifetime((collector, gate)) { curl_easy_perform(curl) }
        var status = 0
        _ = lk_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)

        guard code == CURLE_OK else {
            let message = String(cString: curl_easy_strerror(code))
            if code == CURLE_FILESIZE_EXCEEDED || collector.exceededLimit {
                throw OutboundError(.responseTooLarge, "answer larger than \(request.maximumResponseSize) bytes")
            }
            if status == 0, let blocked = gate?.blockedAddresses, !blocked.isEmpty {
                throw OutboundError(.transport, "address \(blocked.joined(separator: ", ")) is in LIVEKIT_IP_RANGE_BLOCKLIST")
            }
            // No status line means no HTTP answer at all: the next target may be tried.
            throw OutboundError(status == 0 ? .transport : .timeout, message)
        }
        return OutboundResponse(status: HTTPStatus(status), headers: collector.headers, body: collector.body)
    }

    /// A setting that does not take would silently change what a request may do (redirects, the
    /// address policy), so it fails the request before anything is sent.
    private func set(_ option: CURLoption, _ code: CURLcode) throws(OutboundError) {
        guard code == CURLE_OK else {
            throw OutboundError(.transport, "curl option \(option.rawValue) refused: \(String(cString: curl_easy_strerror(code)))")
        }
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

/// Opens the sockets of one transfer under an address policy (contract §13.1): an address the
/// policy blocks gets no socket, which curl treats as a failed connection to that address.
final class ConnectionGate {
    let policy: OutboundAddressPolicy
    let serverName: String
    let url: String
    let logger: Logger
    /// Refused addresses, for the error of a transfer that found no other way.
    private(set) var blockedAddresses: [String] = []

    init(policy: OutboundAddressPolicy, request: OutboundRequest, logger: Logger) {
        self.policy = policy
        self.serverName = request.serverName
        self.url = request.url
        self.logger = logger
    }

    func open(_ address: UnsafeMutablePointer<curl_sockaddr>) -> curl_socket_t {
        var bytes = [UInt8](repeating: 0, count: 16)
        var port: Int32 = 0
        let count = Int(lk_curl_sockaddr_ip(address, &bytes, &port))
        // Only IP sockets are expected; anything else is refused rather than waved through.
        guard let ip = IPAddress(bytes: Array(bytes.prefix(count))) else {
            blockedAddresses.append("of family \(address.pointee.family)")
            return CURL_SOCKET_BAD
        }
        guard policy.permits(ip) else {
            blockedAddresses.append(ip.description)
            logger.warning("Refused outbound connection: address is in LIVEKIT_IP_RANGE_BLOCKLIST", metadata: [
                "MatrixServerName": "\(serverName)", "address": "\(ip)", "port": "\(port)",
                // Without the query (the userinfo URL carries the access token), and cut to 255
                // bytes like every logged value that came from outside (§13.4).
                "url": "\(String(decoding: url.utf8.prefix { $0 != UInt8(ascii: "?") }.prefix(255), as: UTF8.self))",
            ])
            return CURL_SOCKET_BAD
        }
        return socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
    }
}

/// Gathers one transfer's answer; only the last response's headers are kept (redirects).
final class ResponseCollector {
    let limit: Int
    var body: [UInt8] = []
    var headers = HTTPHeaders()
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
        // Parsed as bytes (line end cut, colon found, value's leading blanks skipped) and decoded
        // once per part: trimming through a character set, then searching the decoded line for the
        // colon character by character, showed in the profiles of token requests (1.7 % of them).
        data.withMemoryRebound(to: UInt8.self, capacity: length) { start in
            var count = length
            while count > 0, start[count - 1] == UInt8(ascii: "\r") || start[count - 1] == UInt8(ascii: "\n") { count -= 1 }
            let line = UnsafeBufferPointer(start: start, count: count)
            if line.starts(with: "HTTP/".utf8) {
                headers = []
            } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                var valueStart = colon + 1
                while valueStart < count, line[valueStart] == UInt8(ascii: " ") || line[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
                headers.append(name: String(decoding: UnsafeBufferPointer(rebasing: line[..<colon]), as: UTF8.self),
                               value: String(decoding: UnsafeBufferPointer(rebasing: line[valueStart...]), as: UTF8.self))
            }
        }
    }
}
