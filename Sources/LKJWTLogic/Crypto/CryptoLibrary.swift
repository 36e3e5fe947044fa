import CCrypto

/// libcrypto, loaded on first use (`SharedLibrary`) instead of linked: binding it cost every
/// process start 1 ms, and a plain CGI `/healthz` never hashes or signs. The functions below have
/// the names and types OpenSSL's headers declare and shadow them in this module, so `Digest` reads as
/// ordinary OpenSSL code; each calls through the pointer resolved here.
public enum CryptoLibrary {
    struct Functions: @unchecked Sendable {
        let mdFetch: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> OpaquePointer?
        let digest: @convention(c) (
            UnsafeRawPointer?, Int, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt32>?, OpaquePointer?, OpaquePointer?
        ) -> Int32
        let hmac: @convention(c) (
            OpaquePointer?, UnsafeRawPointer?, Int32, UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt32>?
        ) -> UnsafeMutablePointer<UInt8>?
        let evpSHA256: @convention(c) () -> OpaquePointer?
        let memcmp: @convention(c) (UnsafeRawPointer?, UnsafeRawPointer?, Int) -> Int32
    }

    /// The soname of libssl3's libcrypto (what libssl-dev's libcrypto.so points at).
    static let soname = "libcrypto.so.3"

    /// Loaded on first use (thread-safe: a Swift global's initialiser runs once).
    static let loaded: Result<Functions, SharedLibrary.LoadError> = Result { () throws(SharedLibrary.LoadError) in
        let library = try SharedLibrary(soname)
        return Functions(
            mdFetch: try library.function("EVP_MD_fetch"), digest: try library.function("EVP_Digest"), hmac: try library.function("HMAC"),
            evpSHA256: try library.function("EVP_sha256"), memcmp: try library.function("CRYPTO_memcmp"))
    }

    /// Loads libcrypto now. Long-running processes call it at start-up, so that a missing one stops
    /// them at once rather than at their first token.
    public static func load() throws(SharedLibrary.LoadError) {
        _ = try loaded.get()
    }

    /// Resolved once: through a computed property every call (a dozen setopts per outbound request)
    /// copied the `Result` through the generic `required`, instantiating its metadata each time.
    static let functions: Functions = SharedLibrary.required(loaded)

    /// SHA-256, fetched once: `SHA256()` fetches it from the provider store at every call, under the
    /// store's lock, which 16 threads signing tokens contend for (2 % of a token request's CPU).
    /// libcrypto's method objects are immutable once fetched and safe to share between threads.
    nonisolated(unsafe) static let sha256: OpaquePointer = {
        guard let digest = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("libcrypto has no SHA256") }
        return digest
    }()
}

// The libcrypto functions this module calls, by their OpenSSL names and types.

func EVP_MD_fetch(_ context: OpaquePointer!, _ algorithm: UnsafePointer<CChar>!, _ properties: UnsafePointer<CChar>!) -> OpaquePointer! {
    CryptoLibrary.functions.mdFetch(context, algorithm, properties)
}
func EVP_Digest(
    _ data: UnsafeRawPointer!, _ count: Int, _ digest: UnsafeMutablePointer<UInt8>!, _ digestLength: UnsafeMutablePointer<UInt32>!,
    _ type: OpaquePointer!, _ engine: OpaquePointer!
) -> Int32 {
    CryptoLibrary.functions.digest(data, count, digest, digestLength, type, engine)
}
func HMAC(
    _ digestType: OpaquePointer!, _ key: UnsafeRawPointer!, _ keyLength: Int32, _ data: UnsafePointer<UInt8>!, _ count: Int,
    _ digest: UnsafeMutablePointer<UInt8>!, _ digestLength: UnsafeMutablePointer<UInt32>!
) -> UnsafeMutablePointer<UInt8>! {
    CryptoLibrary.functions.hmac(digestType, key, keyLength, data, count, digest, digestLength)
}
func EVP_sha256() -> OpaquePointer! { CryptoLibrary.functions.evpSHA256() }
func CRYPTO_memcmp(_ lhs: UnsafeRawPointer!, _ rhs: UnsafeRawPointer!, _ count: Int) -> Int32 { CryptoLibrary.functions.memcmp(lhs, rhs, count) }
