/// Structured inputs are NUL-separated fields, so seeds stay readable text and libFuzzer's mutations
/// (which insert and erase bytes) move content between fields.
struct FuzzInput {
    let fields: [[UInt8]]

    init(_ bytes: [UInt8]) {
        fields = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
    }

    /// Field `index` as bytes; empty when the input has fewer fields.
    func bytes(_ index: Int) -> [UInt8] {
        index < fields.count ? fields[index] : []
    }

    /// Field `index` as text (invalid UTF-8 repaired, as the adapters' `String(decoding:)` does).
    func text(_ index: Int) -> String {
        String(decoding: bytes(index), as: UTF8.self)
    }

    /// Field `index` as text, or nil when absent, so "no header" and "empty header" both get tried.
    func optionalText(_ index: Int) -> String? {
        index < fields.count ? text(index) : nil
    }

    /// Everything after the first `count` fields, NULs included: bodies may contain any byte.
    func rest(after count: Int) -> [UInt8] {
        guard count < fields.count else { return [] }
        return Array(fields[count...].joined(separator: [0]))
    }
}
