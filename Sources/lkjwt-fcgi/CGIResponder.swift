import Glibc
import LKJWTLogic

/// Plain CGI: one request from the environment and stdin, the answer on stdout (contract §1.3).
enum CGIResponder {
    static func respond(environment: [String: String], service: AuthorizationService) {
        let body = readBody(contentLength: environment["CONTENT_LENGTH"], deadline: Deadline(after: Request.bodyTimeout))
        let request = Request(cgiParameters: environment, body: body)
        let response = service.respond(to: request)
        FileDescriptor.writeAll(STDOUT_FILENO, response.cgiBytes())
    }

    /// Each read waits (poll) no longer than what is left of `deadline` (§13.2).
    private static func readBody(contentLength: String?, deadline: Deadline) -> Request.Body {
        guard let limit = Request.bodyReadLimit(contentLength: contentLength) else { return .tooLarge }
        var body = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            var input = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            // Each retry after EINTR waits only for what is left.
            let ready = try? SystemCall.run("poll") { () -> Int32 in
                let milliseconds = Int32(clamping: deadline.remaining.milliseconds)
                return milliseconds > 0 ? poll(&input, 1, milliseconds) : 0
            }
            if ready == 0 { return .timedOut }
            let count = try? SystemCall.run("read") { body.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress! + total, limit - total) } }
            guard let count, count > 0 else { break }
            total += count
        }
        guard total <= Request.maximumBodySize else { return .tooLarge }
        return .bytes(Array(body.prefix(total)))
    }
}
