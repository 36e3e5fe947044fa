import Glibc
import LKJWTLogic

/// The process environment and file access the configuration needs, read once.
enum ProcessEnvironment {
    static func current() -> [String: String] {
        variables(environ)
    }

    /// `NAME=value` strings of a NULL-terminated array (the environment, FastCGI parameters); with
    /// `prefixes`, only the entries starting with one of them.
    static func variables(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, prefixes: [String]? = nil) -> [String: String] {
        variables(array, selecting: prefixes.map(NamePrefixes.init))
    }

    /// Prefixes as bytes, compared with each C string in place: FastCGI parameters are filtered on
    /// every request, and comparing through `String` arguments made a C string of every prefix for
    /// every parameter (half of a `/healthz` request's CPU).
    struct NamePrefixes {
        let prefixes: [[UInt8]]

        init(_ prefixes: [String]) {
            self.prefixes = prefixes.map { Array($0.utf8) }
        }

        func match(_ entry: UnsafePointer<CChar>) -> Bool {
            entry.withMemoryRebound(to: UInt8.self, capacity: 1) { bytes in
                prefixes.contains { prefix in
                    // A mismatch at the entry's terminating NUL ends the loop before reading past it.
                    prefix.indices.allSatisfy { bytes[$0] == prefix[$0] }
                }
            }
        }
    }

    static func variables(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, selecting prefixes: NamePrefixes?) -> [String: String] {
        var result: [String: String] = [:]
        guard var cursor = array else { return result }
        // Room from the start, instead of growing (and rehashing) four to six times: for a request's
        // parameters, those it keeps; for the environment, all of it (counted first, cheaply).
        if prefixes != nil {
            result.reserveCapacity(16)
        } else {
            var count = 0
            while cursor[count] != nil { count += 1 }
            result.reserveCapacity(count)
        }
        while let entry = cursor.pointee {
            cursor += 1
            if let prefixes, !prefixes.match(entry) { continue }
            guard let equals = strchr(entry, Int32(UInt8(ascii: "="))) else { continue }
            let nameLength = equals - entry
            let name = entry.withMemoryRebound(to: UInt8.self, capacity: nameLength) {
                String(decoding: UnsafeBufferPointer(start: $0, count: nameLength), as: UTF8.self)
            }
            result[name] = String(cString: equals + 1)
        }
        return result
    }

    struct FileError: Error, CustomStringConvertible {
        let description: String
    }

    /// The whole file; the error text is the OS's, as the contract prints it (§2.2).
    static func readFile(_ path: String) throws -> String {
        let file: UnsafeMutablePointer<FILE>
        do {
            file = try SystemCall.pointer("open") { fopen(path, "rb") }
        } catch {
            throw FileError(description: "open \(path): \(error.reason)")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes += buffer[0..<count] }
            if count < buffer.count {
                if ferror(file) != 0 { throw FileError(description: "read \(path): \(SystemCall.lastError("read").reason)") }
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func printError(_ message: String) {
        FileDescriptor.writeAll(STDERR_FILENO, Array((message + "\n").utf8))
    }
}
