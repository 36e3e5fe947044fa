#if LIBFUZZER
import Glibc

/// libFuzzer build (`-D LIBFUZZER`, see scripts/fuzz): the target named by `LKJWT_FUZZ_TARGET`.
let selectedTarget: FuzzTarget = {
    let name = getenv("LKJWT_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget.named(name) else {
        let names = FuzzTarget.all.map(\.name).joined(separator: " ")
        writeError("LKJWT_FUZZ_TARGET must name one of: \(names)")
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerInitialize")
func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    _ = selectedTarget
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selectedTarget.check(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#endif
