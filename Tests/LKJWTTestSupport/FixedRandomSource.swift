import LKJWTLogic

/// Always the same draw, so weighted SRV ordering and retry jitter are repeatable.
package struct FixedRandomSource: RandomSource {
    let byte: UInt8

    package init(byte: UInt8) {
        self.byte = byte
    }

    package func bytes(_ count: Int) -> [UInt8] { [UInt8](repeating: byte, count: count) }
}
