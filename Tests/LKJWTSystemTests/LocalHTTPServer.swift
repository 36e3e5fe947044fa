import Glibc
import LKJWTLogic
import LKJWTTestSupport
import Synchronization

/// A plain HTTP/1.1 server on 127.0.0.1 for the curl client's tests: it keeps connections alive
/// (so a reused easy handle also reuses its connection), serves each on a thread of its own, and
/// records what each request carried.
///
/// Paths: `/redirect` answers 302 to `/final`; `/slow` answers after 300 ms; `/size/N` answers N
/// bytes; anything else answers "ok".
final class LocalHTTPServer: @unchecked Sendable {
    struct Received: Sendable {
        /// Counts accepted connections from 1: equal numbers mean a reused connection.
        let connection: Int
        let method: String
        let target: String
        let headers: HTTPHeaders
        let body: [UInt8]
    }

    let port: Int
    private let listener: Int32
    private let state = Mutex(State())
    private var thread: Thread?

    private struct State {
        var received: [Received] = []
        var closed: Set<Int> = []
        var open: Set<Int32> = []
        var threads: [Thread] = []
        var stopped = false
    }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        guard listener >= 0 else { throw ServerError(what: "socket", code: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else {
            let code = errno
            close(listener)
            throw ServerError(what: "bind/listen", code: code)
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        thread = Thread { [self] in serve() }
    }

    /// Everything received so far, oldest first.
    var received: [Received] { state.withLock { $0.received } }

    /// Whether the client closed connection `number` (counted from 1) within `limit`.
    func closed(_ number: Int, within limit: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        while clock.now < deadline {
            if state.withLock({ $0.closed.contains(number) }) { return true }
            usleep(10_000)
        }
        return state.withLock { $0.closed.contains(number) }
    }

    /// Ends the connections and the accept loop, and waits for the threads.
    func stop() {
        state.withLock {
            $0.stopped = true
            for connection in $0.open { shutdown(connection, Int32(SHUT_RDWR)) }
        }
        shutdown(listener, Int32(SHUT_RDWR))
        thread?.join()
        thread = nil
        // The accept loop has ended, so no thread is added any more.
        let threads = state.withLock { state in
            defer { state.threads = [] }
            return state.threads
        }
        threads.forEach { $0.join() }
        close(listener)
    }

    private func serve() {
        var connections = 0
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            connections += 1
            let number = connections
            state.withLock { current in
                guard !current.stopped else {
                    close(connection)
                    return
                }
                current.open.insert(connection)
                current.threads.append(Thread { [self] in
                    serve(connection, number: number)
                    state.withLock {
                        $0.open.remove(connection)
                        $0.closed.insert(number)
                    }
                    close(connection)
                })
            }
        }
    }

    /// Requests of one connection until the client closes it.
    private func serve(_ connection: Int32, number: Int) {
        var buffer: [UInt8] = []
        while true {
            guard let headEnd = readUntilHeadEnd(connection, &buffer) else { return }
            let head = String(decoding: buffer[..<headEnd], as: UTF8.self)
            buffer.removeSubrange(..<(headEnd + 4))
            var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
            let requestLine = lines.removeFirst().split(separator: " ").map(String.init)
            guard requestLine.count == 3 else { return }
            var headers = HTTPHeaders()
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append(name: String(line[..<colon]), value: String(line[line.index(after: colon)...].drop { $0 == " " }))
            }
            let length = headers["Content-Length"].flatMap { Int($0) } ?? 0
            while buffer.count < length {
                guard let more = receive(connection) else { return }
                buffer += more
            }
            let body = Array(buffer.prefix(length))
            buffer.removeFirst(length)
            state.withLock {
                $0.received.append(Received(connection: number, method: requestLine[0], target: requestLine[1], headers: headers, body: body))
            }
            guard respond(to: requestLine[1], on: connection) else { return }
        }
    }

    private func respond(to target: String, on connection: Int32) -> Bool {
        var status = "200 OK"
        var extra = ""
        var body = Array("ok".utf8)
        if target == "/redirect" {
            status = "302 Found"
            extra = "Location: /final\r\n"
            body = Array("moved".utf8)
        } else if target == "/final" {
            body = Array("final".utf8)
        } else if target == "/slow" {
            usleep(300_000)
            body = Array("slow".utf8)
        } else if target.hasPrefix("/size/"), let size = Int(target.dropFirst("/size/".count)) {
            body = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        }
        let head = "HTTP/1.1 \(status)\r\nContent-Length: \(body.count)\r\nContent-Type: text/plain\r\n\(extra)\r\n"
        return send(connection, Array(head.utf8) + body)
    }

    private func readUntilHeadEnd(_ connection: Int32, _ buffer: inout [UInt8]) -> Int? {
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            if buffer.count >= 4, let index = (0...(buffer.count - 4)).first(where: { buffer[$0..<($0 + 4)].elementsEqual(end) }) {
                return index
            }
            guard let more = receive(connection) else { return nil }
            buffer += more
        }
    }

    private func receive(_ connection: Int32) -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            return count > 0 ? Array(chunk.prefix(count)) : nil
        }
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    struct ServerError: Error {
        let what: String
        let code: Int32
    }
}
