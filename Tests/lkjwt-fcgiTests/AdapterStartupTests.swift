import Glibc
import LKJWTLogic
import Testing

@testable import lkjwt_fcgi

/// The adapter's start-up pieces that need no request: the command line, the key and secret files
/// (contract §2.2), and the own listening socket (§2.1, §13.6).
struct AdapterStartupTests {
    /// A fresh directory under /tmp, removed with its contents at deinit.
    final class TemporaryDirectory {
        let path: String

        init() throws {
            var template = Array("/tmp/lkjwt-adapter-XXXXXX".utf8CString)
            let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            try #require(created != nil)
            path = String(cString: template)
        }

        deinit {
            if let directory = opendir(path) {
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if name != "." && name != ".." { unlink(path + "/" + name) }
                }
                closedir(directory)
            }
            rmdir(path)
        }

        func write(_ name: String, _ text: String) -> String {
            let file = path + "/" + name
            let descriptor = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            FileDescriptor.writeAll(descriptor, Array(text.utf8))
            close(descriptor)
            return file
        }
    }

    // MARK: Command line

    @Test func threadsAndModesAreParsed() throws {
        let command = try LKJWTCommand.parse(["--threads", "8", "--jobs"])
        #expect(command.threads == 8)
        #expect(command.jobs)
        #expect(!command.checkConfig)
        let defaults = try LKJWTCommand.parse([])
        #expect((defaults.threads, defaults.jobs, defaults.checkConfig) == (16, false, false))
    }

    @Test(arguments: ["0", "1025", "-1", "many", "99999999999999999999"])
    func threadCountsOutsideTheRangeAreRefused(threads: String) {
        #expect(throws: (any Error).self) { try LKJWTCommand.parse(["--threads", threads]) }
    }

    // MARK: Key and secret files

    @Test func aFileIsReadWhole() throws {
        let directory = try TemporaryDirectory()
        let text = "secret-from-file\n" + String(repeating: "x", count: 10_000)
        #expect(try ProcessEnvironment.readFile(directory.write("secret", text)) == text)
        #expect(try ProcessEnvironment.readFile(directory.write("empty", "")) == "")
    }

    @Test func unreadableFilesAreTheOSErrorText() throws {
        let directory = try TemporaryDirectory()
        let missing = #expect(throws: ProcessEnvironment.FileError.self) { try ProcessEnvironment.readFile(directory.path + "/missing") }
        #expect(missing?.description == "open \(directory.path)/missing: No such file or directory")
        let notAFile = #expect(throws: ProcessEnvironment.FileError.self) { try ProcessEnvironment.readFile(directory.path) }
        #expect(notAFile?.description == "read \(directory.path): Is a directory")
    }

    // MARK: Own socket

    @Test func unixSocketIsListeningAndNotWorldWritable() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/lkjwt.sock"
        let socket = try ListenSocket.open(.unix(path: path))
        defer { close(socket) }
        #expect(ServingMode.isListeningSocket(socket))
        var status = stat()
        try #require(stat(path, &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFSOCK)
        #expect(status.st_mode & 0o777 == 0o660)
    }

    @Test func aSocketLeftBehindIsReplacedButNoOtherFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/lkjwt.sock"
        close(try ListenSocket.open(.unix(path: path)))
        let again = try ListenSocket.open(.unix(path: path))
        close(again)
        let file = directory.write("data", "keep me")
        let refused = #expect(throws: ListenSocket.Failure.self) { try ListenSocket.open(.unix(path: file)) }
        #expect(refused?.description == "file exists and is not a socket")
        #expect(try ProcessEnvironment.readFile(file) == "keep me")
    }

    @Test func tooLongASocketPathIsRefused() {
        let path = "/tmp/" + String(repeating: "s", count: 200)
        let refused = #expect(throws: ListenSocket.Failure.self) { try ListenSocket.open(.unix(path: path)) }
        #expect(refused?.description == "socket path too long")
    }
}
