import LKJWTLogic

/// The kernel's CSPRNG (getrandom, through the standard library's generator). Not OpenSSL's: its
/// first use loads OpenSSL's configuration and seeds a generator, 4 ms of a plain CGI request that
/// only wanted a few bytes for a name.
public struct SystemRandomSource: RandomSource {
    public init() {}

    public func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(count)
        while buffer.count < count {
            let word: UInt64 = generator.next()
            withUnsafeBytes(of: word) { buffer.append(contentsOf: $0.prefix(count - buffer.count)) }
        }
        return buffer
    }
}
