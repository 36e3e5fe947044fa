import Glibc

/// A C library loaded with dlopen when first needed instead of linked: every linked library is
/// loaded and bound before `main`, which a plain CGI request pays each time (libcurl with its two
/// dozen dependencies 7 ms, libcrypto 1 ms) whether or not the request uses it.
public struct SharedLibrary: @unchecked Sendable {
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    public let soname: String
    private let handle: UnsafeMutableRawPointer

    public init(_ soname: String) throws(LoadError) {
        guard let handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else {
            throw LoadError(description: "cannot load \(soname): \(String(cString: dlerror()))")
        }
        self.soname = soname
        self.handle = handle
    }

    /// The function `name`, as the C function type the caller expects.
    public func function<Function>(_ name: String) throws(LoadError) -> Function {
        guard let address = dlsym(handle, name) else {
            throw LoadError(description: "\(soname) lacks \(name)")
        }
        return unsafeBitCast(address, to: Function.self)
    }

    /// The functions of a library loaded on first use. Only a broken installation fails here (the
    /// package depends on the library); a long-running process has stopped at start-up instead.
    public static func required<Functions>(_ loaded: Result<Functions, LoadError>) -> Functions {
        switch loaded {
        case .success(let functions): functions
        case .failure(let error): fatalError("\(error)")
        }
    }
}
