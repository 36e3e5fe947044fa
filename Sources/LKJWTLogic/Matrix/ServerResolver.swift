/// Turns a Matrix server name into the federation targets to try, in order (contract §5.3).
public final class ServerResolver: Sendable {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// Which discovery step failed, for the log.
        public let step: String
        public let reason: String
        public var description: String { "\(step): \(reason)" }
    }

    /// The port federation listens on when nothing else says otherwise.
    public static let defaultFederationPort = 8448

    public init() {}

    public func resolve(_ name: ServerName, deadline: Deadline) throws(Failure) -> [FederationTarget] {
        switch name.host {
        case .ipv4(let address), .ipv6(let address):
            // Step 1: an IP literal is contacted directly; the certificate must carry that IP.
            return [FederationTarget(
                connectHost: address, connectPort: name.port ?? ServerResolver.defaultFederationPort,
                hostHeader: name.raw, tlsName: address)]
        case .dns(let host):
            if let port = name.port {
                // Step 2: an explicit port means no delegation is looked up.
                return [FederationTarget(connectHost: host, connectPort: port, hostHeader: name.raw, tlsName: host)]
            }
            // Step 5: the default port.
            return [FederationTarget(
                connectHost: host, connectPort: ServerResolver.defaultFederationPort, hostHeader: host, tlsName: host)]
        }
    }

    /// Drops what is known about a name after all its targets failed, so the next attempt resolves afresh.
    public func forget(_ name: ServerName) {}
}
