import Glibc

public enum FileDescriptor {
    /// Writes all of `bytes`, retrying short writes and EINTR; gives up silently on any other error
    /// (a closed stderr or a web server that went away must not take the process down).
    public static func writeAll(_ fileDescriptor: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = try? SystemCall.run("write") { bytes.withUnsafeBytes { write(fileDescriptor, $0.baseAddress! + offset, $0.count - offset) } }
            guard let written, written > 0 else { return }
            offset += written
        }
    }
}
