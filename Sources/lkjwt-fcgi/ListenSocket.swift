import Glibc
import LKJWTLogic

/// Opens the FastCGI listen socket for "own socket" mode (contract §2.1 `LIVEKIT_JWT_BIND`).
enum ListenSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `group`: the unix socket's group (`LIVEKIT_JWT_SOCKET_GROUP`, a name or a numeric ID); not
    /// used for TCP.
    static func open(_ address: ListenAddress, group: String? = nil) throws(Failure) -> Int32 {
        switch address {
        case .unix(let path): try openUnix(path, group: try group.map(groupID))
        case .tcp(let host, let port): try openTCP(host: host, port: port)
        }
    }

    private static func groupID(_ name: String) throws(Failure) -> gid_t {
        var entry = group()
        var found: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let status = getgrnam_r(name, &entry, &buffer, buffer.count, &found)
        if status == 0, let found { return found.pointee.gr_gid }
        if !name.isEmpty, name.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let id = gid_t(name) {
            return id
        }
        guard status == 0 else { throw Failure(description: "cannot look up group \(name.goQuoted): \(SystemCallError("getgrnam_r", errno: status).reason)") }
        throw Failure(description: "unknown group \(name.goQuoted) in LIVEKIT_JWT_SOCKET_GROUP")
    }

    /// Call it first after the failed call: it reads errno.
    private static func systemError(_ call: String) -> Failure {
        Failure(description: SystemCall.lastError(call).description)
    }

    private static func openUnix(_ path: String, group: gid_t?) throws(Failure) -> Int32 {
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
        // Created owner-only, so that nobody else can connect before the group and mode are set. No
        // other thread runs yet (the scheduler starts after listening), so the process-wide umask is ours.
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindError = errno
        umask(previousMask)
        guard bound == 0 else {
            let failure = Failure(description: SystemCallError("bind", errno: bindError).description)
            close(socketFD)
            throw failure
        }
        // 0660, not world-writable (contract §13.6): whoever reaches a FastCGI socket can forge
        // REMOTE_ADDR and every other parameter. The web server gets in as owner or through the group.
        if let group, chown(path, uid_t.max, group) != 0 {
            let failure = systemError("chown")
            close(socketFD)
            unlink(path)
            throw failure
        }
        guard chmod(path, 0o660) == 0 else {
            let failure = systemError("chmod")
            close(socketFD)
            unlink(path)
            throw failure
        }
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
