import CResolv
import LKJWTLogic

/// SRV lookups through the system resolver (libresolv's `res_nquery`, parsed with `ns_parserr`).
public struct SystemSRVResolver: SRVResolver {
    public init() {}

    public func lookup(_ name: String, timeout: Duration) -> SRVAnswer {
        var answer = [UInt8](repeating: 0, count: 8192)
        var failure: Int32 = 0
        let seconds = Int32(clamping: max(1, timeout.components.seconds))
        let length = lk_query_srv(name, &answer, Int32(answer.count), seconds, &failure)
        guard length >= 0 else {
            switch failure {
            case HOST_NOT_FOUND, NO_DATA: return .notFound
            case TRY_AGAIN: return .failure("DNS server did not answer (TRY_AGAIN)")
            default: return .failure("DNS lookup failed (h_errno \(failure))")
            }
        }
        return answer.withUnsafeBufferPointer { buffer in
            SystemSRVResolver.parse(buffer.baseAddress!, length: Int(min(length, Int32(answer.count))))
        }
    }

    /// Package access: the fuzz targets feed it raw DNS messages.
    package static func parse(_ message: UnsafePointer<UInt8>, length: Int) -> SRVAnswer {
        var handle = ns_msg()
        guard ns_initparse(message, Int32(length), &handle) == 0 else { return .failure("malformed DNS answer") }
        var records: [SRVRecord] = []
        var ttl = Int.max
        for index in 0..<lk_ns_msg_count(&handle, ns_s_an) {
            var record = ns_rr()
            guard ns_parserr(&handle, ns_s_an, index, &record) == 0 else { return .failure("malformed DNS record") }
            guard lk_ns_rr_type(&record) == Int32(ns_t_srv.rawValue), lk_ns_rr_rdlen(&record) > 6, let data = lk_ns_rr_rdata(&record) else { continue }
            var target = [CChar](repeating: 0, count: 1025)
            guard dn_expand(message, message + length, data + 6, &target, Int32(target.count)) >= 0 else { return .failure("malformed SRV target") }
            func field(_ offset: Int) -> UInt16 { UInt16(data[offset]) << 8 | UInt16(data[offset + 1]) }
            records.append(SRVRecord(priority: field(0), weight: field(2), port: field(4), target: String(decoding: target.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
            ttl = min(ttl, Int(lk_ns_rr_ttl(&record)))
        }
        return records.isEmpty ? .notFound : .records(records, ttl: ttl)
    }
}
