/// Where to send a federation request for a server name, and what name to present (contract §5.3).
public struct FederationTarget: Sendable, Equatable, CustomStringConvertible {
    /// TCP connection goes here.
    public var connectHost: String
    public var connectPort: Int
    /// Value of the `Host` header.
    var hostHeader: String
    /// Name the certificate is checked for (and SNI, unless it is an IP address); goes into the URL.
    var tlsName: String
    /// Which discovery step produced it, for the log.
    public var source: String

    public var description: String {
        "\(connectHost):\(connectPort) (Host \(hostHeader), TLS name \(tlsName), from \(source))"
    }

    /// A URL whose authority is the TLS name, so libcurl checks the certificate against it;
    /// `connectAddress` makes the connection go to the resolved target.
    public func url(path: String) -> String {
        let host = tlsName.contains(":") ? "[\(tlsName)]" : tlsName
        return "https://\(host):\(connectPort)\(path)"
    }

    public var connectAddress: (host: String, port: Int) {
        (connectHost, connectPort)
    }
}
