import CFCGI
import Glibc
import Testing

@testable import lkjwt_fcgi

/// When a finished request's connection may close without libfcgi's lingering read: only when the
/// web server has nothing more to send on it.
struct FastCGICloseTests {
    /// A request on one end of a socket pair (the other end plays the web server), its input stream
    /// at its end or not.
    final class Connection {
        let input = UnsafeMutablePointer<FCGX_Stream>.allocate(capacity: 1)
        var request = FCGX_Request()
        private let webServer: Int32

        init(inputAtEnd: Bool, keepConnection: Bool = false) throws {
            var pair: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
            webServer = pair[1]
            input.initialize(to: FCGX_Stream(
                rdNext: nil, wrNext: nil, stop: nil, stopUnget: nil, isReader: 1, isClosed: inputAtEnd ? 1 : 0, wasFCloseCalled: 0,
                FCGI_errno: 0, fillBuffProc: nil, emptyBuffProc: nil, data: nil))
            request.in = input
            request.ipcFd = pair[0]
            request.keepConnection = keepConnection ? 1 : 0
        }

        deinit {
            input.deallocate()
            close(request.ipcFd)
            close(webServer)
        }

        func webServerSends(_ text: String) {
            _ = text.utf8CString.withUnsafeBytes { write(webServer, $0.baseAddress, text.utf8.count) }
        }
    }

    @Test func inputReadToItsEndWithNothingPendingClosesAtOnce() throws {
        let connection = try Connection(inputAtEnd: true)
        #expect(FastCGIServer.mayCloseWithoutLinger(connection.request))
    }

    @Test func bytesPendingOnTheConnectionKeepTheLinger() throws {
        let connection = try Connection(inputAtEnd: true)
        connection.webServerSends("abort")
        #expect(!FastCGIServer.mayCloseWithoutLinger(connection.request))
    }

    @Test func inputNotReadToItsEndKeepsTheLinger() throws {
        let connection = try Connection(inputAtEnd: false)
        #expect(!FastCGIServer.mayCloseWithoutLinger(connection.request))
    }

    @Test func aKeptConnectionIsNotClosed() throws {
        let connection = try Connection(inputAtEnd: true, keepConnection: true)
        #expect(!FastCGIServer.mayCloseWithoutLinger(connection.request))
    }
}
