import CCrypto

/// SHA-256 and HMAC-SHA256 from OpenSSL's libcrypto.
public enum Digest {
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        // EVP_Digest reads nothing through a NULL pointer when the count is 0.
        bytes.withUnsafeBufferPointer { input in
            _ = EVP_Digest(input.baseAddress, input.count, &digest, nil, CryptoLibrary.sha256, nil)
        }
        return digest
    }

    /// One message under a key used once; a key used for many messages is an `HMACKey`.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        HMACKey(key).authenticationCode(message)
    }

    /// Compares in time that depends only on the length, so signatures cannot be guessed byte by byte.
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.isEmpty { return true }
        return lhs.withUnsafeBufferPointer { left in
            rhs.withUnsafeBufferPointer { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }
}
