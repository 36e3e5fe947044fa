import Glibc
import LKJWTLogic

/// The process environment and file access the configuration needs, read once.
enum ProcessEnvironment {
    static func current() -> [String: String] {
        variables(environ)
    }

    /// `NAME=value` strings of a NULL-terminated array (the environment, FastCGI parameters).
    static func variables(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String: String] {
        var result: [String: String] = [:]
        guard var cursor = array else { return result }
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }

    struct FileError: Error, CustomStringConvertible {
        let description: String
    }

    /// The whole file; the error text is the OS's, as the contract prints it (§2.2).
    static func readFile(_ path: String) throws -> String {
        guard let file = fopen(path, "rb") else {
            throw FileError(description: "open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes += buffer[0..<count] }
            if count < buffer.count {
                if ferror(file) != 0 { throw FileError(description: "read \(path): \(String(cString: strerror(errno)))") }
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func printError(_ message: String) {
        FileDescriptor.writeAll(STDERR_FILENO, Array((message + "\n").utf8))
    }
}
