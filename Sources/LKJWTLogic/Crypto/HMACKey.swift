import CCrypto
import Synchronization

/// An HMAC-SHA256 key, keyed into a libcrypto MAC context once and copied for each message.
/// `HMAC()` fetches the MAC and the digest from the provider store by name and hashes the key into
/// them anew at every call: 4 % of a token request's CPU, where a copy of a keyed context costs a
/// few hundred nanoseconds. The context is made at first use, so holding a key loads no libcrypto
/// (a plain CGI `/healthz` never signs).
public final class HMACKey: Sendable {
    private let key: [UInt8]
    /// The address of the keyed `EVP_MAC_CTX`, 0 until first use. It is never used directly, only
    /// copied, which reads it, from any thread.
    private let prepared = Atomic<UInt>(0)

    public init(_ key: [UInt8]) {
        self.key = key
    }

    public convenience init(_ secret: String) {
        self.init(Array(secret.utf8))
    }

    deinit {
        if let context = OpaquePointer(bitPattern: prepared.load(ordering: .acquiring)) { EVP_MAC_CTX_free(context) }
    }

    public var isEmpty: Bool { key.isEmpty }

    public func authenticationCode(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBufferPointer { authenticationCode(UnsafeRawBufferPointer($0)) }
    }

    public func authenticationCode(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        guard let context = EVP_MAC_CTX_dup(keyedContext()) else { fatalError("EVP_MAC_CTX_dup failed: out of memory") }
        defer { EVP_MAC_CTX_free(context) }
        var code = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        var length = 0
        let bytes = message.bindMemory(to: UInt8.self)
        // EVP_MAC_update reads nothing through a NULL pointer when the count is 0.
        guard EVP_MAC_update(context, bytes.baseAddress, bytes.count) == 1, EVP_MAC_final(context, &code, &length, code.count) == 1,
            length == code.count
        else { fatalError("HMAC-SHA256 failed in libcrypto") }
        return code
    }

    private func keyedContext() -> OpaquePointer {
        if let context = OpaquePointer(bitPattern: prepared.load(ordering: .acquiring)) { return context }
        guard let context = EVP_MAC_CTX_new(CryptoLibrary.hmac) else { fatalError("EVP_MAC_CTX_new failed: out of memory") }
        let keyed = "SHA256".withCString { digestName in
            "digest".withCString { parameterName in
                let parameters = [
                    OSSL_PARAM(
                        key: parameterName, data_type: UInt32(OSSL_PARAM_UTF8_STRING), data: UnsafeMutableRawPointer(mutating: digestName),
                        data_size: 6, return_size: Int(bitPattern: UInt.max)),
                    OSSL_PARAM(key: nil, data_type: 0, data: nil, data_size: 0, return_size: 0),
                ]
                // A NULL key would mean "keep the previous one"; an empty key is valid (if useless),
                // so point at one byte and pass length 0.
                let keyStorage = key.isEmpty ? [0] : key
                return keyStorage.withUnsafeBufferPointer { EVP_MAC_init(context, $0.baseAddress, key.count, parameters) == 1 }
            }
        }
        guard keyed else { fatalError("EVP_MAC_init failed for HMAC-SHA256") }
        // Threads racing on first use each key a context; one is kept, the others are freed.
        let (exchanged, kept) = prepared.compareExchange(
            expected: 0, desired: UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(context))), ordering: .acquiringAndReleasing)
        if exchanged { return context }
        EVP_MAC_CTX_free(context)
        return OpaquePointer(bitPattern: kept)!
    }
}
