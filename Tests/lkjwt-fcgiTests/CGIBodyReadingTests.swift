import Glibc
import LKJWTLogic
import Testing

@testable import lkjwt_fcgi

/// Plain CGI reads the body from stdin (here: a pipe) up to CONTENT_LENGTH, at most 64 KiB, and never
/// past the body's deadline (contract §3.1, §13.2).
struct CGIBodyReadingTests {
    /// A pipe whose read end stands in for stdin; the write end is closed by `closeWriter` or at deinit.
    final class StandardInput {
        let readEnd: Int32
        private(set) var writeEnd: Int32

        init() throws {
            var ends: [Int32] = [-1, -1]
            try #require(pipe(&ends) == 0)
            readEnd = ends[0]
            writeEnd = ends[1]
        }

        deinit {
            close(readEnd)
            if writeEnd >= 0 { close(writeEnd) }
        }

        func write(_ bytes: [UInt8]) {
            FileDescriptor.writeAll(writeEnd, bytes)
        }

        /// For bodies larger than a pipe's buffer: written from another thread while the body is read.
        func writeInBackground(_ bytes: [UInt8]) throws -> PosixThread {
            let writeEnd = self.writeEnd
            let writer = PosixThread.start { FileDescriptor.writeAll(writeEnd, bytes) }
            return try #require(writer)
        }

        func closeWriter() {
            close(writeEnd)
            writeEnd = -1
        }

        /// What is left in the pipe after the body was read (the writer must be closed).
        func remaining() -> [UInt8] {
            var rest: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(readEnd, &buffer, buffer.count)
                guard count > 0 else { return rest }
                rest += buffer[0..<count]
            }
        }
    }

    static let aWhile = Deadline(after: .seconds(30))

    @Test func bodyOfTheDeclaredLengthIsReadWhole() throws {
        let input = try StandardInput()
        input.write(Array(#"{"room":"!r:example.org"}"#.utf8))
        input.closeWriter()
        #expect(CGIResponder.readBody(from: input.readEnd, contentLength: "25", deadline: Self.aWhile) == .bytes(Array(#"{"room":"!r:example.org"}"#.utf8)))
    }

    @Test func nothingBeyondTheDeclaredLengthIsRead() throws {
        let input = try StandardInput()
        input.write(Array("0123456789".utf8))
        input.closeWriter()
        #expect(CGIResponder.readBody(from: input.readEnd, contentLength: "4", deadline: Self.aWhile) == .bytes(Array("0123".utf8)))
        #expect(input.remaining() == Array("456789".utf8))
    }

    @Test func bodyEndingBeforeTheDeclaredLengthIsWhatArrived() throws {
        let input = try StandardInput()
        input.write(Array("abc".utf8))
        input.closeWriter()
        #expect(CGIResponder.readBody(from: input.readEnd, contentLength: "10", deadline: Self.aWhile) == .bytes(Array("abc".utf8)))
    }

    @Test func zeroLengthReadsNothing() throws {
        let input = try StandardInput()
        input.write(Array("unexpected".utf8))
        input.closeWriter()
        #expect(CGIResponder.readBody(from: input.readEnd, contentLength: "0", deadline: Self.aWhile) == .bytes([]))
        #expect(input.remaining() == Array("unexpected".utf8))
    }

    @Test(arguments: ["65537", "9223372036854775807", "99999999999999999999999"])
    func declaredLengthAboveTheLimitIsRefusedUnread(contentLength: String) throws {
        let input = try StandardInput()
        input.write(Array("body".utf8))
        input.closeWriter()
        #expect(CGIResponder.readBody(from: input.readEnd, contentLength: contentLength, deadline: Self.aWhile) == .tooLarge)
        #expect(input.remaining() == Array("body".utf8))
    }

    @Test func bodyOfExactlyTheLimitIsAccepted() throws {
        let input = try StandardInput()
        let body = [UInt8](repeating: 0x61, count: Request.maximumBodySize)
        let writer = try input.writeInBackground(body)
        let read = CGIResponder.readBody(from: input.readEnd, contentLength: "\(Request.maximumBodySize)", deadline: Self.aWhile)
        writer.join()
        #expect(read == .bytes(body))
    }

    @Test(arguments: [nil, "", "abc", "-5"] as [String?])
    func bodyWithoutAUsableLengthIsReadToItsEndUpToTheLimit(contentLength: String?) throws {
        let small = try StandardInput()
        small.write(Array("short".utf8))
        small.closeWriter()
        #expect(CGIResponder.readBody(from: small.readEnd, contentLength: contentLength, deadline: Self.aWhile) == .bytes(Array("short".utf8)))

        let large = try StandardInput()
        let body = [UInt8](repeating: 0x62, count: Request.maximumBodySize + 1)
        let writer = try large.writeInBackground(body)
        let read = CGIResponder.readBody(from: large.readEnd, contentLength: contentLength, deadline: Self.aWhile)
        writer.join()
        #expect(read == .tooLarge)
    }

    @Test func passedDeadlineTimesOutWithoutWaiting() throws {
        let input = try StandardInput()
        input.write(Array("ab".utf8))
        #expect(CGIResponder.readBody(from: input.readEnd, contentLength: "5", deadline: Deadline(after: .zero)) == .timedOut)
    }

    /// The one test on the real clock: what is measured is that poll() is bounded by the deadline.
    @Test func clientThatStopsSendingCostsNoMoreThanTheDeadline() throws {
        let input = try StandardInput()
        input.write(Array("ab".utf8))
        let start = ContinuousClock.now
        let read = CGIResponder.readBody(from: input.readEnd, contentLength: "5", deadline: Deadline(after: .milliseconds(200)))
        let elapsed = ContinuousClock.now - start
        #expect(read == .timedOut)
        #expect(elapsed >= .milliseconds(190))
        #expect(elapsed < .seconds(5), "bounded by the deadline, not by the writer")
    }
}
