import Glibc
import LKJWTLogic
import Testing

@testable import lkjwt_fcgi

/// The adapter's start-up pieces that need no request: the command line, the key and secret files
/// (contract §2.2), and the own listening socket (§2.1, §13.6).
struct AdapterStartupTests {
    /// Runs `body` in a fresh directory under /tmp (its path), removed with its files afterwards.
    static func inFreshDirectory(_ body: (String) throws -> Void) throws {
        var template = Array("/tmp/lkjwt-adapter-XXXXXX".utf8CString)
        try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) } != nil)
        let path = String(cString: template)
        defer {
            let directory = opendir(path)
            while let directory, let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            if let directory { closedir(directory) }
            rmdir(path)
        }
        try body(path)
    }

    /// `text` as the whole of the file at `path`, created owner-only; returns `path`.
    static func file(_ path: String, containing text: String) -> String {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        FileDescriptor.writeAll(descriptor, Array(text.utf8))
        close(descriptor)
        return path
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
        try Self.inFreshDirectory { (directory: String) throws in
            let text = "secret-from-file\n" + String(repeating: "x", count: 10_000)
            #expect(try ProcessEnvironment.readFile(Self.file(directory + "/secret", containing: text)) == text)
            #expect(try ProcessEnvironment.readFile(Self.file(directory + "/empty", containing: "")) == "")
        }
    }

    @Test func unreadableFilesAreTheOSErrorText() throws {
        try Self.inFreshDirectory { (directory: String) throws in
            let missing = #expect(throws: ProcessEnvironment.FileError.self) { try ProcessEnvironment.readFile(directory + "/missing") }
            #expect(missing?.description == "open \(directory)/missing: No such file or directory")
            let notAFile = #expect(throws: ProcessEnvironment.FileError.self) { try ProcessEnvironment.readFile(directory) }
            #expect(notAFile?.description == "read \(directory): Is a directory")
        }
    }

    // MARK: Own socket

    @Test func unixSocketIsListeningAndNotWorldWritable() throws {
        try Self.inFreshDirectory { (directory: String) throws in
            let path = directory + "/lkjwt.sock"
            let socket = try ListenSocket.open(.unix(path: path))
            defer { close(socket) }
            #expect(ServingMode.isListeningSocket(socket))
            var status = stat()
            try #require(stat(path, &status) == 0)
            #expect(status.st_mode & S_IFMT == S_IFSOCK)
            #expect(status.st_mode & 0o777 == 0o660)
        }
    }

    @Test func aSocketLeftBehindIsReplacedButNoOtherFile() throws {
        try Self.inFreshDirectory { (directory: String) throws in
            let path = directory + "/lkjwt.sock"
            close(try ListenSocket.open(.unix(path: path)))
            close(try ListenSocket.open(.unix(path: path)))
            let file = Self.file(directory + "/data", containing: "keep me")
            let refused = #expect(throws: ListenSocket.Failure.self) { try ListenSocket.open(.unix(path: file)) }
            #expect(refused?.description == "file exists and is not a socket")
            #expect(try ProcessEnvironment.readFile(file) == "keep me")
        }
    }

    @Test func tooLongASocketPathIsRefused() {
        let path = "/tmp/" + String(repeating: "s", count: 200)
        let refused = #expect(throws: ListenSocket.Failure.self) { try ListenSocket.open(.unix(path: path)) }
        #expect(refused?.description == "socket path too long")
    }
}
