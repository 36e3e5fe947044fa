#if !LIBFUZZER
import Glibc

/// Ordinary build: runs saved inputs (seeds, a crash artifact) through a target's checks, so that a
/// finding reproduces in a debug build with a readable stack trace.
@main
struct ReplayCommand {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, name != "--help", name != "-h" else {
            print("usage: lkjwt-fuzz <target> <file or directory>...   (targets below)")
            for target in FuzzTarget.all { print("  \(target.name): \(target.summary)") }
            exit(arguments.isEmpty ? 2 : 0)
        }
        guard let target = FuzzTarget.named(name) else {
            writeError("unknown target \(name); targets: \(FuzzTarget.all.map(\.name).joined(separator: " "))")
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            for file in files(at: path) {
                guard let bytes = read(file) else {
                    writeError("cannot read \(file)")
                    exit(1)
                }
                target.check(bytes)
                count += 1
            }
        }
        print("\(target.name): \(count) inputs passed")
    }

    /// A file, or the regular files directly in a directory (libFuzzer corpora are flat).
    static func files(at path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { names.append("\(path)/\(name)") }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes += chunk.prefix(count)
            if count < chunk.count { break }
        }
        return ferror(file) == 0 ? bytes : nil
    }
}
#endif
