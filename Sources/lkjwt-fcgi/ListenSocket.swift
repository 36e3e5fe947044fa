import Glibc
import LKJWTLogic

/// Opens the FastCGI listen socket for "own socket" mode (contract §2.1 `LIVEKIT_JWT_BIND`).
enum ListenSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func open(_ address: ListenAddress) throws(Failure) -> Int32 {
        switch address {
        case .unix(let path): try openUnix(path)
        case .tcp(let host, let port): try openTCP(host: host, port: port)
        }
    }

    private static func systemError(_ call: String) -> Failure {
        Failure(description: "\(call): \(String(cString: strerror(errno)))")
    }

    private static func openUnix(_ path: String) throws(Failure) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(description: "socket path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: pathBytes)
        }
        // Replace a socket left behind by an earlier run, but never another kind of file.
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw Failure(description: "file exists and is not a socket") }
            unlink(path)
        }
        let socketFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw systemError("socket") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let failure = systemError("bind")
            close(socketFD)
            throw failure
        }
        // Every endpoint is public over HTTP anyway; the web server's user must be able to connect.
        chmod(path, 0o666)
        return try listening(socketFD)
    }

    private static func openTCP(host: String, port: Int) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var results: UnsafeMutablePointer<addrinfo>?
        let lookup = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &results)
        guard lookup == 0, let first = results else {
            throw Failure(description: String(cString: gai_strerror(lookup)))
        }
        defer { freeaddrinfo(results) }
        var lastFailure = Failure(description: "no usable address")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        // With an empty host, prefer the IPv6 wildcard, which also accepts IPv4 on Linux by default.
        while let info = candidate {
            candidate = info.pointee.ai_next
            let socketFD = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            guard socketFD >= 0 else {
                lastFailure = systemError("socket")
                continue
            }
            var one: Int32 = 1
            setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if bind(socketFD, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                return try listening(socketFD)
            }
            lastFailure = systemError("bind")
            close(socketFD)
        }
        throw lastFailure
    }

    private static func listening(_ socketFD: Int32) throws(Failure) -> Int32 {
        guard listen(socketFD, 1024) == 0 else {
            let failure = systemError("listen")
            close(socketFD)
            throw failure
        }
        return socketFD
    }
}
