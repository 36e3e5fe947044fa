import CCrypto

/// Randomness comes in through this so that tests can make it repeatable.
public protocol RandomSource: Sendable {
    func bytes(_ count: Int) -> [UInt8]
}

extension RandomSource {
    /// A uniformly distributed value in [0, 1).
    public func unitInterval() -> Double {
        let raw = bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Double(raw >> 11) / Double(UInt64(1) << 53)
    }
}

/// OpenSSL's CSPRNG.
public struct SystemRandomSource: RandomSource {
    public init() {}

    public func bytes(_ count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        if count > 0, RAND_bytes(&buffer, Int32(count)) != 1 {
            // RAND_bytes only fails when the kernel cannot seed it; the system generator is the same source.
            var generator = SystemRandomNumberGenerator()
            for index in buffer.indices { buffer[index] = generator.next() }
        }
        return buffer
    }
}
