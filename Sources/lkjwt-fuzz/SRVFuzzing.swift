import LKJWTLogic
import LKJWTSystem

/// Raw DNS answers to `_matrix-fed._tcp` SRV queries (what `res_nquery` returns), then the targets
/// server discovery makes of the records (§5.3).
enum SRVFuzzing {
    static let target = FuzzTarget(
        name: "srv", summary: "a raw DNS message: SystemSRVResolver.parse, then ServerResolver's targets") { bytes in
            let answer = bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress.map { SystemSRVResolver.parse($0, length: buffer.count) } ?? .failure("empty")
            }
            guard case .records(let records, let ttl) = answer else { return }
            invariant(!records.isEmpty, "records without records")
            invariant(ttl >= 0 && ttl <= Int(UInt32.max), "ttl \(ttl)")
            let resolver = ServerResolver(
                http: ScriptedHTTPClient { _ in OutboundResponse(status: 404) }, srv: FixedSRVResolver(answer: answer), clock: FixedClock(),
                random: FixedRandomSource())
            guard let name = ServerName.parse("example.org"), let targets = try? resolver.resolve(name, deadline: Deadline(after: .seconds(10))) else {
                invariant(false, "SRV records did not resolve")
                return
            }
            invariant(!targets.isEmpty, "no targets")
            let ports = Set(records.map { Int($0.port) })
            for target in targets where target.source != "default port" {
                invariant(ports.contains(target.connectPort), "target port \(target.connectPort) is in no record")
                invariant(!target.connectHost.isEmpty && !target.connectHost.hasSuffix("."), "target host \(target.connectHost.debugDescription)")
            }
        }
}
