import CFCGI
import Glibc
import LKJWTLogic
import Logging
import Synchronization

/// The FastCGI responder: a pool of threads calling `FCGX_Accept_r` concurrently on one listening
/// socket (no accept mutex: it stalls kept connections, FASTCGI-NOTES.md), and the shutdown logic.
final class FastCGIServer: Sendable {
    /// One worker thread, as the shutdown logic sees it: lock-free, since every request passes here.
    private final class WorkerSlot: Sendable {
        /// Inside `FCGX_Accept_r`, where a wake-up signal may interrupt it.
        let idle = Atomic<Bool>(false)
        let thread = Atomic<UInt>(0)
    }

    /// In-flight requests get this long to finish after SIGTERM.
    static let drainTimeout: Duration = .seconds(30)
    /// CGI parameters the service reads; the web server sends about two dozen more.
    static let wantedParameters = ProcessEnvironment.NamePrefixes([
        "REQUEST_METHOD=", "SCRIPT_NAME=", "PATH_INFO=", "REQUEST_URI=", "CONTENT_LENGTH=", "REMOTE_ADDR=", "REMOTE_PORT=", "HTTP_",
    ])

    private let listenFD: Int32
    private let service: AuthorizationService
    private let logger: Logger
    /// Runs when SIGTERM arrives, before draining: new delayed-leave jobs are refused from then on.
    private let onShutdown: @Sendable () -> Void
    private let slots: [WorkerSlot]
    private let shuttingDown = Atomic<Bool>(false)
    private let running = Atomic<Int>(0)

    init(listenFD: Int32, threadCount: Int, service: AuthorizationService, logger: Logger, onShutdown: @escaping @Sendable () -> Void) {
        self.listenFD = listenFD
        self.slots = (0..<threadCount).map { _ in WorkerSlot() }
        self.service = service
        self.logger = logger
        self.onShutdown = onShutdown
    }

    /// Serves until a stop signal, then drains and returns. The stop signals must be blocked since
    /// before the first thread of the process (`ProcessSignals.blockStopSignals`).
    func serve() {
        ProcessSignals.installWakeHandler()
        FCGX_Init()
        for slot in slots {
            running.add(1, ordering: .relaxed)
            guard let thread = PosixThread.start({ [self] in runWorker(slot) }) else {
                running.subtract(1, ordering: .relaxed)
                logger.error("Could not start worker thread")
                continue
            }
            slot.thread.store(thread.id, ordering: .releasing)
        }
        let received = ProcessSignals.waitForStop()
        logger.info("Shutting down", metadata: ["signal": "\(received)"])
        onShutdown()
        drain()
    }

    /// Stop accepting, let in-flight requests finish. The listening socket is left intact: it may be
    /// shared with sibling processes or kept by systemd for the next start.
    private func drain() {
        shuttingDown.store(true, ordering: .sequentiallyConsistent)
        let deadline = Deadline(after: FastCGIServer.drainTimeout)
        while running.load(ordering: .acquiring) > 0 {
            guard !deadline.hasPassed else {
                logger.warning("Requests still running at the end of the shutdown timeout", metadata: ["timeout": "\(FastCGIServer.drainTimeout)"])
                return
            }
            // Interrupt every idle accepter; repeated because a signal can land just before accept().
            for slot in slots where slot.idle.load(ordering: .acquiring) {
                let thread = slot.thread.load(ordering: .acquiring)
                if thread != 0 { pthread_kill(thread, ProcessSignals.wakeSignal) }
            }
            SystemCall.sleep(for: .milliseconds(20))
        }
    }

    /// Worker thread body: accept, translate, respond, until shutdown.
    private func runWorker(_ slot: WorkerSlot) {
        defer { running.subtract(1, ordering: .releasing) }
        var request = FCGX_Request()
        guard FCGX_InitRequest(&request, listenFD, Int32(FCGI_FAIL_ACCEPT_ON_INTR)) == 0 else {
            logger.error("FCGX_InitRequest failed")
            return
        }
        while !shuttingDown.load(ordering: .acquiring) {
            slot.idle.store(true, ordering: .sequentiallyConsistent)
            let accepted = FCGX_Accept_r(&request)
            slot.idle.store(false, ordering: .sequentiallyConsistent)
            guard accepted >= 0 else {
                let failure = SystemCall.lastError("accept")
                if shuttingDown.load(ordering: .acquiring) { break }
                // A transient accept failure (EMFILE and the like): do not spin.
                logger.warning("FastCGI accept failed", metadata: ["err": "\(failure.reason)"])
                SystemCall.sleep(for: .milliseconds(100))
                continue
            }
            handle(&request)
            if FastCGIServer.mayCloseWithoutLinger(request) { _ = FCGX_Detach(&request) }
            FCGX_Finish_r(&request)
        }
        FCGX_Free(&request, 1)
    }

    private func handle(_ fcgiRequest: inout FCGX_Request) {
        let deadline = Deadline(after: Request.bodyTimeout)
        let parameters = ProcessEnvironment.variables(fcgiRequest.envp, selecting: FastCGIServer.wantedParameters)
        let body = FastCGIServer.readBody(
            fcgiRequest.in, connection: fcgiRequest.ipcFd, contentLength: parameters["CONTENT_LENGTH"], deadline: deadline,
            keepsConnection: fcgiRequest.keepConnection != 0)
        let request = Request(cgiParameters: parameters, body: body)
        let response = service.respond(to: request)
        let bytes = response.cgiBytes()
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = FCGX_PutStr(chars.baseAddress, Int32(chars.count), fcgiRequest.out)
            }
        }
    }

    /// libfcgi closes a connection by shutting down its sending side and reading until the web
    /// server closes too (up to 2 s), so that bytes the web server still sends cannot make the kernel
    /// answer with a reset that destroys the response. Once the request's input has been read to its
    /// end (the empty FCGI_STDIN record) and nothing else is pending, the web server sends nothing more
    /// on a connection it does not keep: a plain close (a detached request's) saves a wait and a
    /// wake-up, a quarter of a `/healthz` request's CPU (bench: 24 % less).
    static func mayCloseWithoutLinger(_ request: FCGX_Request) -> Bool {
        guard request.keepConnection == 0, let input = request.in, input.pointee.isClosed != 0, input.pointee.FCGI_errno == 0 else {
            return false
        }
        var byte: UInt8 = 0
        let pending = recv(request.ipcFd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return pending == 0 || (pending < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    }

    /// Reads in small steps: most requests (GET, OPTIONS) have no body, and a zeroed 64 KiB buffer
    /// for each of them showed in profiles. Bytes libfcgi already holds are copied; otherwise exactly
    /// one record is read from the connection, with a receive timeout of what is left of `deadline`,
    /// so a client that stops sending costs this thread no more than the body's deadline (§13.2).
    /// `keepsConnection`: the web server sends more requests on this connection (FCGI_KEEP_CONN), so
    /// the timeout must be lifted again afterwards; otherwise the connection closes with the request.
    static func readBody(
        _ stream: UnsafeMutablePointer<FCGX_Stream>?, connection: Int32, contentLength: String?, deadline: Deadline,
        keepsConnection: Bool = true
    ) -> Request.Body {
        guard let limit = Request.bodyReadLimit(contentLength: contentLength) else { return .tooLarge }
        guard let stream else { return .bytes([]) }
        var body: [UInt8] = []
        var chunk = [CChar](repeating: 0, count: min(limit, 8192))
        var timeoutSet = false
        // A kept-alive connection waits for its next request without a timeout again.
        defer { if timeoutSet && keepsConnection { setReceiveTimeout(connection, .zero) } }
        while body.count < limit {
            let buffered = stream.pointee.rdNext.map { next in stream.pointee.stop.map { $0 - next } ?? 0 } ?? 0
            if buffered > 0 {
                let wanted = Int32(min(chunk.count, limit - body.count, buffered))
                let read = FCGX_GetStr(&chunk, wanted, stream)
                if read <= 0 { break }
                chunk.withUnsafeBytes { body.append(contentsOf: $0.prefix(Int(read))) }
                continue
            }
            if stream.pointee.isClosed != 0 { break }
            guard !deadline.hasPassed else { return .timedOut }
            setReceiveTimeout(connection, deadline.remaining)
            timeoutSet = true
            let byte = FCGX_GetChar(stream)
            if byte < 0 {
                // End of the body, or the read failed: by the timeout (EAGAIN) or otherwise.
                if deadline.hasPassed || [EAGAIN, EWOULDBLOCK].contains(FCGX_GetError(stream)) { return .timedOut }
                break
            }
            body.append(UInt8(truncatingIfNeeded: byte))
        }
        guard body.count <= Request.maximumBodySize else { return .tooLarge }
        // A connection closed after this request closes without lingering if its input was read to
        // the end (`mayCloseWithoutLinger`): the empty record that ends the body follows the body at
        // once, so this usually reads nothing from the connection. A timeout set for the body's last
        // record still stands: it was the deadline's remainder microseconds ago.
        if !keepsConnection, body.count == limit, stream.pointee.isClosed == 0, !deadline.hasPassed {
            if !timeoutSet { setReceiveTimeout(connection, deadline.remaining) }
            _ = FCGX_GetChar(stream)
        }
        return .bytes(body)
    }

    /// `SO_RCVTIMEO` on the request's connection; zero waits without limit. At least 1 ms, as zero
    /// would mean "no timeout".
    private static func setReceiveTimeout(_ connection: Int32, _ duration: Duration) {
        let milliseconds = duration == .zero ? 0 : max(1, duration.milliseconds)
        var value = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        _ = setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }
}
