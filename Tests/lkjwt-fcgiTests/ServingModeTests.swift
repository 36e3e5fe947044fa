import Glibc
import Testing

@testable import lkjwt_fcgi

/// Contract §1.3: systemd's fd 3, spawn-fcgi's fd 0, plain CGI, or a socket of our own, in that order.
struct ServingModeTests {
    static let ourPID: pid_t = 4242

    static func detect(_ environment: [String: String], standardInputListens: Bool = false) -> ServingMode {
        ServingMode.detect(environment: environment, processID: ourPID) { fileDescriptor in
            fileDescriptor == STDIN_FILENO && standardInputListens
        }
    }

    @Test func systemdSocketForThisProcessIsFileDescriptorThree() {
        #expect(Self.detect(["LISTEN_PID": "4242", "LISTEN_FDS": "1"]) == .inheritedSocket(fileDescriptor: 3, origin: "fd3"))
        #expect(Self.detect(["LISTEN_PID": "4242", "LISTEN_FDS": "2"]) == .inheritedSocket(fileDescriptor: 3, origin: "fd3"))
    }

    @Test(arguments: [
        ["LISTEN_PID": "4243", "LISTEN_FDS": "1"],  // meant for another process (inherited environment)
        ["LISTEN_PID": "4242", "LISTEN_FDS": "0"],
        ["LISTEN_PID": "4242"],
        ["LISTEN_FDS": "1"],
        ["LISTEN_PID": "4242x", "LISTEN_FDS": "1"],
        ["LISTEN_PID": "4242", "LISTEN_FDS": "-1"],
        ["LISTEN_PID": "99999999999999999999", "LISTEN_FDS": "1"],
        ["LISTEN_PID": "4242", "LISTEN_FDS": "99999999999999999999"],
    ])
    func systemdVariablesThatDoNotHandUsASocketAreIgnored(environment: [String: String]) {
        #expect(Self.detect(environment) == .ownSocket)
        #expect(Self.detect(environment, standardInputListens: true) == .inheritedSocket(fileDescriptor: STDIN_FILENO, origin: "fd0"))
    }

    @Test func listeningStandardInputIsSpawnFCGIsSocket() {
        #expect(Self.detect([:], standardInputListens: true) == .inheritedSocket(fileDescriptor: STDIN_FILENO, origin: "fd0"))
        // A web server that spawns FastCGI children also sets CGI variables in their environment.
        #expect(Self.detect(["GATEWAY_INTERFACE": "CGI/1.1"], standardInputListens: true) == .inheritedSocket(fileDescriptor: STDIN_FILENO, origin: "fd0"))
    }

    @Test func systemdSocketWinsOverListeningStandardInput() {
        let environment = ["LISTEN_PID": "4242", "LISTEN_FDS": "1", "GATEWAY_INTERFACE": "CGI/1.1"]
        #expect(Self.detect(environment, standardInputListens: true) == .inheritedSocket(fileDescriptor: 3, origin: "fd3"))
    }

    @Test func gatewayInterfaceWithoutSocketIsPlainCGI() {
        #expect(Self.detect(["GATEWAY_INTERFACE": "CGI/1.1"]) == .cgi)
        #expect(Self.detect(["GATEWAY_INTERFACE": ""]) == .cgi)
    }

    @Test func nothingHandedOverMeansOurOwnSocket() {
        #expect(Self.detect([:]) == .ownSocket)
        #expect(Self.detect(["REQUEST_METHOD": "GET", "LIVEKIT_JWT_BIND": ":8080"]) == .ownSocket)
    }

    @Test func onlyAListeningSocketCountsAsListening() throws {
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listening >= 0)
        defer { close(listening) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        #expect(!ServingMode.isListeningSocket(listening), "bound, not yet listening")
        try #require(listen(listening, 1) == 0)
        #expect(ServingMode.isListeningSocket(listening))

        var pipeEnds: [Int32] = [0, 0]
        try #require(pipe(&pipeEnds) == 0)
        defer { pipeEnds.forEach { close($0) } }
        #expect(!ServingMode.isListeningSocket(pipeEnds[0]), "a CGI request body arrives on a pipe")
        #expect(!ServingMode.isListeningSocket(-1))
    }
}
