import Glibc

/// One parser of outside input under fuzzing: `check` runs an input through it and traps (through
/// `invariant`) when a property that must hold for every input does not. libFuzzer counts a trap as a
/// crash and keeps the input.
struct FuzzTarget: Sendable {
    let name: String
    let summary: String
    let check: @Sendable ([UInt8]) -> Void

    static let all: [FuzzTarget] = [
        JSONFuzzing.target,
        RequestFuzzing.target,
        CGIFuzzing.target,
        WebhookFuzzing.target,
        ProtobufFuzzing.target,
        DateFuzzing.httpDate,
        DateFuzzing.rfc3339,
        RetryAfterFuzzing.target,
        SRVFuzzing.target,
        WellKnownFuzzing.target,
        JobRecordFuzzing.target,
        ApplicationServiceFuzzing.target,
        ParticipantRecordFuzzing.target,
    ]

    static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// A broken property is a finding like a crash: trap with a message that says which.
func invariant(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError("invariant violated: \(message())", file: file, line: line) }
}

/// A line on standard error (Glibc's `stderr` is a mutable global Swift 6 will not touch).
func writeError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { buffer in _ = Glibc.write(2, buffer.baseAddress, buffer.count) }
}
