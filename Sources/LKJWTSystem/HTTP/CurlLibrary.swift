import CCurl
import LKJWTLogic

/// libcurl, loaded on first use instead of linked: loading it and the two dozen libraries it needs
/// (TLS, Kerberos, LDAP, SSH…) cost every process start 7 ms, most of a plain CGI `/healthz`, which
/// never sends anything. The functions below have the names and types of the ones curl.h declares
/// and shadow them in this module, so callers read as ordinary libcurl code; each calls through the
/// pointer resolved here.
public enum CurlLibrary {
    struct Functions: @unchecked Sendable {
        let globalInit: @convention(c) (Int) -> CURLcode
        let easyInit: @convention(c) () -> UnsafeMutableRawPointer?
        let easyCleanup: @convention(c) (UnsafeMutableRawPointer?) -> Void
        let easyReset: @convention(c) (UnsafeMutableRawPointer?) -> Void
        let easyPerform: @convention(c) (UnsafeMutableRawPointer?) -> CURLcode
        let easyStrerror: @convention(c) (CURLcode) -> UnsafePointer<CChar>
        let easySetopt: OpaquePointer
        let easyGetinfo: OpaquePointer
        let slistAppend: @convention(c) (UnsafeMutablePointer<curl_slist>?, UnsafePointer<CChar>?) -> UnsafeMutablePointer<curl_slist>?
        let slistFreeAll: @convention(c) (UnsafeMutablePointer<curl_slist>?) -> Void
        let url: @convention(c) () -> OpaquePointer?
        let urlCleanup: @convention(c) (OpaquePointer?) -> Void
        let urlSet: @convention(c) (OpaquePointer?, CURLUPart, UnsafePointer<CChar>?, UInt32) -> CURLUcode
        let urlGet: @convention(c) (OpaquePointer?, CURLUPart, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UInt32) -> CURLUcode
        let urlStrerror: @convention(c) (CURLUcode) -> UnsafePointer<CChar>
        let free: @convention(c) (UnsafeMutableRawPointer?) -> Void
    }

    /// The soname of libcurl4 (Debian's libcurl4-openssl-dev links the same).
    static let soname = "libcurl.so.4"

    /// Loaded and `curl_global_init`ed on first use (thread-safe: a Swift global's initialiser runs once).
    static let loaded: Result<Functions, SharedLibrary.LoadError> = Result { () throws(SharedLibrary.LoadError) in
        let library = try SharedLibrary(soname)
        let functions = Functions(
            globalInit: try library.function("curl_global_init"), easyInit: try library.function("curl_easy_init"),
            easyCleanup: try library.function("curl_easy_cleanup"), easyReset: try library.function("curl_easy_reset"),
            easyPerform: try library.function("curl_easy_perform"), easyStrerror: try library.function("curl_easy_strerror"),
            easySetopt: try library.function("curl_easy_setopt"), easyGetinfo: try library.function("curl_easy_getinfo"),
            slistAppend: try library.function("curl_slist_append"), slistFreeAll: try library.function("curl_slist_free_all"),
            url: try library.function("curl_url"), urlCleanup: try library.function("curl_url_cleanup"),
            urlSet: try library.function("curl_url_set"), urlGet: try library.function("curl_url_get"),
            urlStrerror: try library.function("curl_url_strerror"), free: try library.function("curl_free"))
        let initialised = functions.globalInit(Int(CURL_GLOBAL_DEFAULT))
        guard initialised == CURLE_OK else {
            throw SharedLibrary.LoadError(description: "curl_global_init failed: \(String(cString: functions.easyStrerror(initialised)))")
        }
        return functions
    }

    /// Loads libcurl now. Long-running processes call it at start-up, before their threads, so that
    /// a missing or unusable libcurl stops them at once and `curl_global_init` runs single-threaded.
    public static func load() throws(SharedLibrary.LoadError) {
        _ = try loaded.get()
    }

    /// Resolved once: through a computed property every call (a dozen setopts per outbound request)
    /// copied the `Result` through the generic `required`, instantiating its metadata each time.
    static let functions: Functions = SharedLibrary.required(loaded)
}

// The libcurl functions this module calls, by their curl.h names and types.

func curl_easy_init() -> UnsafeMutableRawPointer! { CurlLibrary.functions.easyInit() }
func curl_easy_cleanup(_ handle: UnsafeMutableRawPointer!) { CurlLibrary.functions.easyCleanup(handle) }
func curl_easy_reset(_ handle: UnsafeMutableRawPointer!) { CurlLibrary.functions.easyReset(handle) }
func curl_easy_perform(_ handle: UnsafeMutableRawPointer!) -> CURLcode { CurlLibrary.functions.easyPerform(handle) }
func curl_easy_strerror(_ code: CURLcode) -> UnsafePointer<CChar>! { CurlLibrary.functions.easyStrerror(code) }
func curl_slist_append(_ list: UnsafeMutablePointer<curl_slist>!, _ text: UnsafePointer<CChar>!) -> UnsafeMutablePointer<curl_slist>! {
    CurlLibrary.functions.slistAppend(list, text)
}
func curl_slist_free_all(_ list: UnsafeMutablePointer<curl_slist>!) { CurlLibrary.functions.slistFreeAll(list) }
func curl_url() -> OpaquePointer! { CurlLibrary.functions.url() }
func curl_url_cleanup(_ handle: OpaquePointer!) { CurlLibrary.functions.urlCleanup(handle) }
func curl_url_set(_ handle: OpaquePointer!, _ part: CURLUPart, _ content: UnsafePointer<CChar>!, _ flags: UInt32) -> CURLUcode {
    CurlLibrary.functions.urlSet(handle, part, content, flags)
}
func curl_url_get(_ handle: OpaquePointer!, _ part: CURLUPart, _ content: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!, _ flags: UInt32) -> CURLUcode {
    CurlLibrary.functions.urlGet(handle, part, content, flags)
}
func curl_url_strerror(_ code: CURLUcode) -> UnsafePointer<CChar>! { CurlLibrary.functions.urlStrerror(code) }
func curl_free(_ pointer: UnsafeMutableRawPointer!) { CurlLibrary.functions.free(pointer) }

func lk_curl_setopt_long(_ handle: UnsafeMutableRawPointer!, _ option: CURLoption, _ value: Int) -> CURLcode {
    lk_curl_setopt_long_via(CurlLibrary.functions.easySetopt, handle, option, value)
}
func lk_curl_setopt_string(_ handle: UnsafeMutableRawPointer!, _ option: CURLoption, _ value: UnsafePointer<CChar>!) -> CURLcode {
    lk_curl_setopt_string_via(CurlLibrary.functions.easySetopt, handle, option, value)
}
func lk_curl_setopt_pointer(_ handle: UnsafeMutableRawPointer!, _ option: CURLoption, _ value: UnsafeMutableRawPointer!) -> CURLcode {
    lk_curl_setopt_pointer_via(CurlLibrary.functions.easySetopt, handle, option, value)
}
func lk_curl_setopt_slist(_ handle: UnsafeMutableRawPointer!, _ option: CURLoption, _ value: UnsafeMutablePointer<curl_slist>!) -> CURLcode {
    lk_curl_setopt_slist_via(CurlLibrary.functions.easySetopt, handle, option, value)
}
func lk_curl_setopt_data_callback(_ handle: UnsafeMutableRawPointer!, _ option: CURLoption, _ callback: lk_curl_data_callback!) -> CURLcode {
    lk_curl_setopt_data_callback_via(CurlLibrary.functions.easySetopt, handle, option, callback)
}
func lk_curl_setopt_opensocket_callback(_ handle: UnsafeMutableRawPointer!, _ callback: lk_curl_opensocket_callback!) -> CURLcode {
    lk_curl_setopt_opensocket_callback_via(CurlLibrary.functions.easySetopt, handle, callback)
}
func lk_curl_getinfo_long(_ handle: UnsafeMutableRawPointer!, _ info: CURLINFO, _ value: UnsafeMutablePointer<Int>!) -> CURLcode {
    lk_curl_getinfo_long_via(CurlLibrary.functions.easyGetinfo, handle, info, value)
}
