import CCrypto
import LKJWTLogic

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
