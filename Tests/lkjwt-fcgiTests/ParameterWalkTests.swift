import Glibc
import Testing

@testable import lkjwt_fcgi

/// The walk over a NULL-terminated `NAME=value` array: the process environment, and the FastCGI
/// parameters of each request filtered to the ones the service reads.
struct ParameterWalkTests {
    /// `entries` as a C array for the duration of `body`, exactly as libfcgi hands `envp` over.
    static func withEntries<T>(_ entries: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
        let strings = entries.map { entry -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: entry.count + 1)
            for (index, byte) in entry.enumerated() { copy[index] = CChar(bitPattern: byte) }
            copy[entry.count] = 0
            return copy
        }
        let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { array[index] = string }
        array[strings.count] = nil
        defer {
            strings.forEach { $0.deallocate() }
            array.deallocate()
        }
        return body(array)
    }

    static func walk(_ entries: [String], prefixes: ProcessEnvironment.NamePrefixes? = nil) -> [String: String] {
        withEntries(entries.map { Array($0.utf8) }) { ProcessEnvironment.variables($0, selecting: prefixes) }
    }

    @Test func everyEntryIsSplitAtTheFirstEquals() {
        let variables = Self.walk(["PATH=/usr/bin:/bin", "LIVEKIT_SECRET=a=b==", "EMPTY=", "=nameless", "NOEQUALS"])
        #expect(variables == ["PATH": "/usr/bin:/bin", "LIVEKIT_SECRET": "a=b==", "EMPTY": "", "": "nameless"])
    }

    @Test func noArrayAndEmptyArrayGiveNothing() {
        #expect(ProcessEnvironment.variables(nil).isEmpty)
        #expect(Self.walk([]).isEmpty)
        #expect(Self.walk([], prefixes: FastCGIServer.wantedParameters).isEmpty)
    }

    @Test func requestParametersAreFilteredToWhatTheServiceReads() {
        let parameters = Self.walk([
            "REQUEST_METHOD=POST", "SCRIPT_NAME=/livekit/jwt", "PATH_INFO=/get_token", "REQUEST_URI=/livekit/jwt/get_token?x=1",
            "CONTENT_LENGTH=42", "REMOTE_ADDR=192.0.2.7", "REMOTE_PORT=51000", "HTTP_ORIGIN=https://app.example",
            "HTTP_X_FORWARDED_FOR=198.51.100.1", "HTTP_=empty-header-name",
            // Sent by every web server, read by nobody here.
            "CONTENT_TYPE=application/json", "SERVER_NAME=example.org", "GATEWAY_INTERFACE=CGI/1.1", "DOCUMENT_ROOT=/srv",
            // The prefixes include the "=", so a longer name with the same start is not taken for the short one.
            "REQUEST_METHODS=GET", "CONTENT_LENGTHS=1", "REMOTE_ADDRESS=203.0.113.9", "http_origin=lower-case",
        ], prefixes: FastCGIServer.wantedParameters)
        #expect(parameters == [
            "REQUEST_METHOD": "POST", "SCRIPT_NAME": "/livekit/jwt", "PATH_INFO": "/get_token", "REQUEST_URI": "/livekit/jwt/get_token?x=1",
            "CONTENT_LENGTH": "42", "REMOTE_ADDR": "192.0.2.7", "REMOTE_PORT": "51000", "HTTP_ORIGIN": "https://app.example",
            "HTTP_X_FORWARDED_FOR": "198.51.100.1", "HTTP_": "empty-header-name",
        ])
    }

    @Test func bytesThatAreNotUTF8AreReplacedNotTrapped() {
        let parameters = Self.withEntries([Array("HTTP_X_".utf8) + [0xFF, 0xC3] + Array("=v".utf8) + [0xE2, 0x82]]) {
            ProcessEnvironment.variables($0, selecting: FastCGIServer.wantedParameters)
        }
        #expect(parameters == ["HTTP_X_\u{FFFD}\u{FFFD}": "v\u{FFFD}"])
    }

    @Test func aLongValueArrivesWhole() {
        let value = String(repeating: "a", count: 100_000)
        #expect(Self.walk(["HTTP_COOKIE=" + value], prefixes: FastCGIServer.wantedParameters) == ["HTTP_COOKIE": value])
    }
}
