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
        let macFetch: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> OpaquePointer?
        let macContextNew: @convention(c) (OpaquePointer?) -> OpaquePointer?
        let macContextDup: @convention(c) (OpaquePointer?) -> OpaquePointer?
        let macContextFree: @convention(c) (OpaquePointer?) -> Void
        let macInit: @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, Int, UnsafePointer<OSSL_PARAM>?) -> Int32
        let macUpdate: @convention(c) (OpaquePointer?, UnsafePointer<UInt8>?, Int) -> Int32
        let macFinal: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<Int>?, Int) -> Int32
        let memcmp: @convention(c) (UnsafeRawPointer?, UnsafeRawPointer?, Int) -> Int32
    }

    /// The soname of libssl3's libcrypto (what libssl-dev's libcrypto.so points at).
    static let soname = "libcrypto.so.3"

    /// Loaded on first use (thread-safe: a Swift global's initialiser runs once).
    static let loaded: Result<Functions, SharedLibrary.LoadError> = Result { () throws(SharedLibrary.LoadError) in
        let library = try SharedLibrary(soname)
        return Functions(
            mdFetch: try library.function("EVP_MD_fetch"), digest: try library.function("EVP_Digest"),
            macFetch: try library.function("EVP_MAC_fetch"), macContextNew: try library.function("EVP_MAC_CTX_new"),
            macContextDup: try library.function("EVP_MAC_CTX_dup"), macContextFree: try library.function("EVP_MAC_CTX_free"),
            macInit: try library.function("EVP_MAC_init"), macUpdate: try library.function("EVP_MAC_update"),
            macFinal: try library.function("EVP_MAC_final"), memcmp: try library.function("CRYPTO_memcmp"))
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

    /// HMAC, fetched once for the same reason.
    nonisolated(unsafe) static let hmac: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { fatalError("libcrypto has no HMAC") }
        return mac
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
func EVP_MAC_fetch(_ context: OpaquePointer!, _ algorithm: UnsafePointer<CChar>!, _ properties: UnsafePointer<CChar>!) -> OpaquePointer! {
    CryptoLibrary.functions.macFetch(context, algorithm, properties)
}
func EVP_MAC_CTX_new(_ mac: OpaquePointer!) -> OpaquePointer! { CryptoLibrary.functions.macContextNew(mac) }
func EVP_MAC_CTX_dup(_ context: OpaquePointer!) -> OpaquePointer! { CryptoLibrary.functions.macContextDup(context) }
func EVP_MAC_CTX_free(_ context: OpaquePointer!) { CryptoLibrary.functions.macContextFree(context) }
func EVP_MAC_init(_ context: OpaquePointer!, _ key: UnsafePointer<UInt8>!, _ keyLength: Int, _ parameters: UnsafePointer<OSSL_PARAM>!) -> Int32 {
    CryptoLibrary.functions.macInit(context, key, keyLength, parameters)
}
func EVP_MAC_update(_ context: OpaquePointer!, _ data: UnsafePointer<UInt8>!, _ count: Int) -> Int32 {
    CryptoLibrary.functions.macUpdate(context, data, count)
}
func EVP_MAC_final(_ context: OpaquePointer!, _ out: UnsafeMutablePointer<UInt8>!, _ outLength: UnsafeMutablePointer<Int>!, _ size: Int) -> Int32 {
    CryptoLibrary.functions.macFinal(context, out, outLength, size)
}
func CRYPTO_memcmp(_ lhs: UnsafeRawPointer!, _ rhs: UnsafeRawPointer!, _ count: Int) -> Int32 { CryptoLibrary.functions.memcmp(lhs, rhs, count) }
