import Glibc
import LKJWTLogic

/// How this process was started (contract §1.3), decided once at start-up.
enum ServingMode: Equatable {
    /// A listening FastCGI socket handed over by systemd (fd 3) or spawn-fcgi (fd 0).
    case inheritedSocket(fileDescriptor: Int32, origin: String)
    /// Plain CGI: one request from the environment and stdin.
    case cgi
    /// Listen on the configured address ourselves.
    case ownSocket

    static func detect(environment: [String: String]) -> ServingMode {
        detect(environment: environment, processID: getpid(), isListeningSocket: isListeningSocket)
    }

    /// The rule itself, with this process's ID and the socket check passed in so tests can choose them.
    static func detect(environment: [String: String], processID: pid_t, isListeningSocket: (Int32) -> Bool) -> ServingMode {
        if let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == processID,
            let count = environment["LISTEN_FDS"].flatMap(Int.init), count >= 1
        {
            return .inheritedSocket(fileDescriptor: 3, origin: "fd3")
        }
        if isListeningSocket(STDIN_FILENO) {
            return .inheritedSocket(fileDescriptor: STDIN_FILENO, origin: "fd0")
        }
        if environment["GATEWAY_INTERFACE"] != nil {
            return .cgi
        }
        return .ownSocket
    }

    static func isListeningSocket(_ fileDescriptor: Int32) -> Bool {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fileDescriptor, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting == 1
    }
}
