/// One DNS SRV record (RFC 2782).
public struct SRVRecord: Sendable, Equatable {
    public var priority: UInt16
    public var weight: UInt16
    public var port: UInt16
    /// Without the trailing dot.
    public var target: String

    public init(priority: UInt16, weight: UInt16, port: UInt16, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

public enum SRVAnswer: Sendable, Equatable {
    /// With the smallest TTL among the records, in seconds.
    case records([SRVRecord], ttl: Int)
    /// The name does not exist or has no SRV records.
    case notFound
    /// The lookup itself failed (timeout, SERVFAIL, no resolver).
    case failure(String)
}

/// SRV lookups come in through this, so discovery is testable without DNS.
public protocol SRVResolver: Sendable {
    /// Answers within `timeout` (at least one second: the resolver counts whole seconds).
    func lookup(_ name: String, timeout: Duration) -> SRVAnswer
}
