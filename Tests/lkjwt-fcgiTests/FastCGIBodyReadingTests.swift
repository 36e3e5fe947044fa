import CFCGI
import Glibc
import LKJWTLogic
import Testing

@testable import lkjwt_fcgi

/// The FastCGI body: bytes libfcgi already buffered are copied, otherwise one record is read at a time
/// with the connection's receive timeout set to what is left of the deadline, and reset afterwards
/// for the kept-alive connection (contract §3.1, §13.2).
struct FastCGIBodyReadingTests {
    /// An `FCGX_Stream` whose refills come from a script instead of a connection: each refill (what
    /// libfcgi does when its buffer is empty) takes the next step. Records the receive timeout of the
    /// connection at each refill.
    final class ScriptedStream {
        enum Step {
            case record([UInt8])
            /// The end of the body (the empty FCGI_STDIN record).
            case end
            /// The read failed with this errno (EAGAIN: the receive timeout expired).
            case failure(Int32)
        }

        let stream = UnsafeMutablePointer<FCGX_Stream>.allocate(capacity: 1)
        /// The request's connection: one end of a socket pair, so that SO_RCVTIMEO really is set.
        let connection: Int32
        private let peer: Int32
        private var steps: [Step]
        private var records: [UnsafeMutableBufferPointer<UInt8>] = []
        private(set) var refills = 0
        private(set) var timeoutsAtRefill: [Duration] = []

        init(buffered: [UInt8] = [], steps: [Step]) throws {
            var pair: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
            connection = pair[0]
            peer = pair[1]
            self.steps = steps
            stream.initialize(to: FCGX_Stream(
                rdNext: nil, wrNext: nil, stop: nil, stopUnget: nil, isReader: 1, isClosed: 0, wasFCloseCalled: 0, FCGI_errno: 0,
                fillBuffProc: { stream in
                    guard let stream, let data = stream.pointee.data else { return }
                    Unmanaged<ScriptedStream>.fromOpaque(data).takeUnretainedValue().refill()
                },
                emptyBuffProc: nil, data: nil))
            stream.pointee.data = Unmanaged.passUnretained(self).toOpaque()
            load(buffered)
        }

        deinit {
            records.forEach { $0.deallocate() }
            stream.deallocate()
            close(connection)
            close(peer)
        }

        private func load(_ bytes: [UInt8]) {
            let record = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            _ = record.initialize(from: bytes)
            records.append(record)
            stream.pointee.rdNext = record.baseAddress
            stream.pointee.stopUnget = record.baseAddress
            stream.pointee.stop = record.baseAddress! + bytes.count
            stream.pointee.wrNext = stream.pointee.stop
        }

        private func refill() {
            refills += 1
            timeoutsAtRefill.append(receiveTimeout)
            guard !steps.isEmpty else { return endOfStream() }
            switch steps.removeFirst() {
            case .record(let bytes): load(bytes)
            case .end: endOfStream()
            case .failure(let error):
                stream.pointee.FCGI_errno = error
                endOfStream()
            }
        }

        private func endOfStream() {
            load([])
            stream.pointee.isClosed = 1
        }

        var receiveTimeout: Duration {
            var value = timeval()
            var length = socklen_t(MemoryLayout<timeval>.size)
            guard getsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &value, &length) == 0 else { return .seconds(-1) }
            return .seconds(value.tv_sec) + .microseconds(value.tv_usec)
        }

        /// What a later reader of the stream would still get.
        var unread: Int { stream.pointee.stop - stream.pointee.rdNext! }

        func readBody(contentLength: String?, deadline: Deadline = Deadline(after: .seconds(10)), keepsConnection: Bool = true) -> Request.Body {
            FastCGIServer.readBody(stream, connection: connection, contentLength: contentLength, deadline: deadline, keepsConnection: keepsConnection)
        }

        var isAtEnd: Bool { stream.pointee.isClosed != 0 }
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func bufferedBodyIsCopiedWithoutTouchingTheConnection() throws {
        let input = try ScriptedStream(buffered: Self.bytes(#"{"a":1}"#), steps: [])
        #expect(input.readBody(contentLength: "7") == .bytes(Self.bytes(#"{"a":1}"#)))
        #expect(input.refills == 0)
        #expect(input.receiveTimeout == .zero)
    }

    @Test func bodyInSeveralRecordsIsReadWithTheDeadlineAsReceiveTimeout() throws {
        let input = try ScriptedStream(buffered: Self.bytes("he"), steps: [.record(Self.bytes("llo")), .record(Self.bytes(" world"))])
        #expect(input.readBody(contentLength: "11", deadline: Deadline(after: .seconds(10))) == .bytes(Self.bytes("hello world")))
        #expect(input.refills == 2)
        #expect(input.timeoutsAtRefill.count == 2)
        for timeout in input.timeoutsAtRefill {
            #expect(timeout > .seconds(9) && timeout <= .seconds(10), "what is left of the deadline, not the whole timeout again")
        }
        #expect(input.receiveTimeout == .zero, "the kept-alive connection waits for its next request without a timeout")
    }

    @Test func nothingBeyondTheDeclaredLengthIsRead() throws {
        let input = try ScriptedStream(buffered: Self.bytes("0123456789"), steps: [])
        #expect(input.readBody(contentLength: "4") == .bytes(Self.bytes("0123")))
        #expect(input.unread == 6)
    }

    @Test func onAConnectionThatClosesTheEndOfTheBodyIsReadToo() throws {
        let input = try ScriptedStream(buffered: Self.bytes(#"{"a":1}"#), steps: [.end])
        #expect(input.readBody(contentLength: "7", keepsConnection: false) == .bytes(Self.bytes(#"{"a":1}"#)))
        #expect(input.isAtEnd, "read to its end, the connection may close without lingering")
        #expect(input.timeoutsAtRefill.count == 1 && input.timeoutsAtRefill[0] > .seconds(9), "under the body's deadline")

        let empty = try ScriptedStream(steps: [.end])
        #expect(empty.readBody(contentLength: "0", keepsConnection: false) == .bytes([]))
        #expect(empty.isAtEnd, "a declared length of 0 too")

        let kept = try ScriptedStream(buffered: Self.bytes(#"{"a":1}"#), steps: [.end])
        #expect(kept.readBody(contentLength: "7") == .bytes(Self.bytes(#"{"a":1}"#)))
        #expect(!kept.isAtEnd && kept.refills == 0, "a kept connection's next request needs no such read")
    }

    @Test func bodyEndingBeforeTheDeclaredLengthIsWhatArrived() throws {
        let input = try ScriptedStream(buffered: Self.bytes("abc"), steps: [.end])
        #expect(input.readBody(contentLength: "10") == .bytes(Self.bytes("abc")))
        #expect(input.refills == 1)
        #expect(input.receiveTimeout == .zero)
    }

    @Test func receiveTimeoutExpiringIsATimedOutBody() throws {
        let input = try ScriptedStream(buffered: Self.bytes("ab"), steps: [.failure(EAGAIN)])
        #expect(input.readBody(contentLength: "5") == .timedOut)
        #expect(input.receiveTimeout == .zero)
    }

    @Test func otherReadFailureEndsTheBodyWithWhatArrived() throws {
        let input = try ScriptedStream(buffered: Self.bytes("ab"), steps: [.failure(ECONNRESET)])
        #expect(input.readBody(contentLength: "5") == .bytes(Self.bytes("ab")))
        #expect(input.receiveTimeout == .zero)
    }

    @Test func passedDeadlineTimesOutWithoutReading() throws {
        let input = try ScriptedStream(buffered: Self.bytes("ab"), steps: [.record(Self.bytes("cde"))])
        #expect(input.readBody(contentLength: "5", deadline: Deadline(after: .zero)) == .timedOut)
        #expect(input.refills == 0)
        #expect(input.receiveTimeout == .zero)
    }

    @Test func bufferedBytesAreTakenEvenAfterTheDeadline() throws {
        let input = try ScriptedStream(buffered: Self.bytes("abcde"), steps: [])
        #expect(input.readBody(contentLength: "5", deadline: Deadline(after: .zero)) == .bytes(Self.bytes("abcde")))
    }

    @Test func zeroLengthAndMissingStreamReadNothing() throws {
        let input = try ScriptedStream(buffered: Self.bytes("unexpected"), steps: [])
        #expect(input.readBody(contentLength: "0") == .bytes([]))
        #expect(input.unread == 10)
        #expect(FastCGIServer.readBody(nil, connection: -1, contentLength: "5", deadline: Deadline(after: .seconds(1))) == .bytes([]))
    }

    @Test(arguments: ["65537", "9223372036854775807", "99999999999999999999999"])
    func declaredLengthAboveTheLimitIsRefusedUnread(contentLength: String) throws {
        let input = try ScriptedStream(buffered: Self.bytes("body"), steps: [])
        #expect(input.readBody(contentLength: contentLength) == .tooLarge)
        #expect(input.unread == 4)
    }

    @Test(arguments: [nil, "", "abc", "-5"] as [String?])
    func bodyWithoutAUsableLengthIsReadToItsEndUpToTheLimit(contentLength: String?) throws {
        let small = try ScriptedStream(buffered: Self.bytes("short"), steps: [.end])
        #expect(small.readBody(contentLength: contentLength) == .bytes(Self.bytes("short")))

        let half = Request.maximumBodySize / 2
        let exact = try ScriptedStream(steps: [.record(.init(repeating: 1, count: half)), .record(.init(repeating: 2, count: half)), .end])
        #expect(exact.readBody(contentLength: contentLength) == .bytes(.init(repeating: 1, count: half) + .init(repeating: 2, count: half)))

        let large = try ScriptedStream(steps: [.record(.init(repeating: 1, count: half)), .record(.init(repeating: 2, count: half + 1))])
        #expect(large.readBody(contentLength: contentLength) == .tooLarge)
        #expect(large.unread == 0, "one byte past the limit is enough to know")
    }
}
