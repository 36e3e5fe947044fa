import CFCGI
import Glibc
import LKJWTLogic
import Logging
import Synchronization

/// The FastCGI responder: a pool of threads calling `FCGX_Accept_r` concurrently on one listening
/// socket (no accept mutex: it stalls kept connections, FASTCGI-NOTES.md), and the shutdown logic.
final class FastCGIServer: Sendable {
    private struct PoolState {
        var shuttingDown = false
        /// Threads inside `FCGX_Accept_r`, which a wake-up signal may interrupt.
        var idle: Set<Int> = []
        var threads: [Int: pthread_t] = [:]
        var running = 0
    }

    /// In-flight requests get this long to finish after SIGTERM.
    static let drainTimeout: Duration = .seconds(30)

    private let listenFD: Int32
    private let threadCount: Int
    private let service: AuthorizationService
    private let logger: Logger
    /// Runs when SIGTERM arrives, before draining: new delayed-leave jobs are refused from then on.
    private let onShutdown: @Sendable () -> Void
    private let state = Mutex(PoolState())

    init(listenFD: Int32, threadCount: Int, service: AuthorizationService, logger: Logger, onShutdown: @escaping @Sendable () -> Void) {
        self.listenFD = listenFD
        self.threadCount = threadCount
        self.service = service
        self.logger = logger
        self.onShutdown = onShutdown
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    func serve() {
        let terminationSignals = ProcessSignals.blockTermination()
        ProcessSignals.installWakeHandler()
        FCGX_Init()
        for index in 0..<threadCount {
            startWorker(index)
        }
        let received = ProcessSignals.wait(for: terminationSignals)
        logger.info("Shutting down", metadata: ["signal": "\(received)"])
        onShutdown()
        drain()
    }

    private func startWorker(_ index: Int) {
        let context = Unmanaged.passRetained(WorkerContext(server: self, index: index)).toOpaque()
        var thread = pthread_t()
        state.withLock { $0.running += 1 }
        let result = pthread_create(&thread, nil, { context in
            Unmanaged<WorkerContext>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<WorkerContext>.fromOpaque(context).release()
            state.withLock { $0.running -= 1 }
            logger.error("Could not start worker thread", metadata: ["err": "\(String(cString: strerror(result)))"])
            return
        }
        pthread_detach(thread)
        state.withLock { $0.threads[index] = thread }
    }

    /// Stop accepting, let in-flight requests finish. The listening socket is left intact: it may be
    /// shared with sibling processes or kept by systemd for the next start.
    private func drain() {
        let deadline = Deadline(after: FastCGIServer.drainTimeout)
        while !deadline.hasPassed {
            let running = state.withLock { state -> Int in
                state.shuttingDown = true
                // Interrupt every idle accepter; repeated because a signal can land just before accept().
                for index in state.idle {
                    if let thread = state.threads[index] { pthread_kill(thread, ProcessSignals.wakeSignal) }
                }
                return state.running
            }
            if running == 0 { return }
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&pause, nil)
        }
        logger.warning("Requests still running at the end of the shutdown timeout", metadata: ["timeout": "\(FastCGIServer.drainTimeout)"])
    }

    /// Worker thread body: accept, translate, respond, until shutdown.
    fileprivate func runWorker(_ index: Int) {
        defer { state.withLock { $0.running -= 1 } }
        var request = FCGX_Request()
        guard FCGX_InitRequest(&request, listenFD, Int32(FCGI_FAIL_ACCEPT_ON_INTR)) == 0 else {
            logger.error("FCGX_InitRequest failed")
            return
        }
        while true {
            let stop = state.withLock { state -> Bool in
                if state.shuttingDown { return true }
                state.idle.insert(index)
                return false
            }
            if stop { break }
            let accepted = FCGX_Accept_r(&request)
            let proceed = state.withLock { state -> Bool in
                state.idle.remove(index)
                return accepted >= 0
            }
            guard proceed else {
                if state.withLock({ $0.shuttingDown }) { break }
                // A transient accept failure (EMFILE and the like): do not spin.
                logger.warning("FastCGI accept failed", metadata: ["err": "\(String(cString: strerror(errno)))"])
                var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
                nanosleep(&pause, nil)
                continue
            }
            handle(&request)
            FCGX_Finish_r(&request)
        }
        FCGX_Free(&request, 1)
    }

    private func handle(_ fcgiRequest: inout FCGX_Request) {
        let parameters = ProcessEnvironment.variables(fcgiRequest.envp)
        let body = FastCGIServer.readBody(fcgiRequest.in, contentLength: parameters["CONTENT_LENGTH"])
        let request = Request(cgiParameters: parameters, body: body)
        let response = service.respond(to: request)
        let bytes = response.cgiBytes(includeBody: request.method != "HEAD")
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = FCGX_PutStr(chars.baseAddress, Int32(chars.count), fcgiRequest.out)
            }
        }
    }

    static func readBody(_ stream: UnsafeMutablePointer<FCGX_Stream>?, contentLength: String?) -> Request.Body {
        guard let limit = Request.bodyReadLimit(contentLength: contentLength) else { return .tooLarge }
        var body = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            let read = body.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    FCGX_GetStr(chars.baseAddress! + total, Int32(limit - total), stream)
                }
            }
            if read <= 0 { break }
            total += Int(read)
        }
        guard total <= Request.maximumBodySize else { return .tooLarge }
        return .bytes(Array(body.prefix(total)))
    }
}

/// What a new thread needs; passed through pthread_create's context pointer.
private final class WorkerContext {
    let server: FastCGIServer
    let index: Int

    init(server: FastCGIServer, index: Int) {
        self.server = server
        self.index = index
    }

    func run() {
        server.runWorker(index)
    }
}
