import Glibc
import Logging
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

/// The address policy as libcurl applies it: after name resolution, before any connection. Nothing
/// listens on the ports used here, and nothing needs to: a blocked address is never connected to.
struct CurlHTTPClientTests {
    static let client = CurlHTTPClient(tls: TLSSettings(), logger: Logger(label: "test"))

    static func failure(_ url: String, policy: OutboundAddressPolicy?) -> OutboundError? {
        do {
            _ = try client.send(OutboundRequest(url: url, timeout: .seconds(5), addressPolicy: policy, serverName: "evil.example"))
            return nil
        } catch {
            return error
        }
    }

    @Test func aBlockedAddressIsATransportFailureWithoutAConnection() throws {
        let error = try #require(Self.failure("http://127.0.0.1:9/", policy: .standard))
        #expect(error.kind == .transport)
        #expect(error.message == "address 127.0.0.1 is in LIVEKIT_IP_RANGE_BLOCKLIST")
    }

    @Test func namesAreCheckedOnWhatTheyResolveTo() throws {
        // localhost resolves to 127.0.0.1 (and ::1 where the host has it): each address is refused.
        let error = try #require(Self.failure("http://localhost:9/", policy: .standard))
        #expect(error.kind == .transport)
        #expect(error.message.hasPrefix("address 127.0.0.1") || error.message.hasPrefix("address ::1"))
        #expect(error.message.hasSuffix(" is in LIVEKIT_IP_RANGE_BLOCKLIST"))
        let mapped = try #require(Self.failure("http://[::ffff:127.0.0.1]:9/", policy: .standard))
        #expect(mapped.message == "address ::ffff:127.0.0.1 is in LIVEKIT_IP_RANGE_BLOCKLIST")
    }

    @Test func allowedAddressesAndUncheckedRequestsAreConnectedTo() throws {
        let allowed = OutboundAddressPolicy(
            blocklist: OutboundAddressPolicy.defaultBlocklist, allowlist: [try #require(IPRange.parse("127.0.0.1"))])
        // A port bound but not listening: the kernel refuses the connection, so an attempt shows.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        #expect(bound)
        let port = UInt16(bigEndian: address.sin_port)
        for policy in [allowed, nil] {
            let error = try #require(Self.failure("http://127.0.0.1:\(port)/", policy: policy))
            #expect(error.kind == .transport)
            #expect(error.message.contains("refused") || error.message.contains("connect"))
            #expect(!error.message.contains("LIVEKIT_IP_RANGE_BLOCKLIST"))
        }
    }
}
