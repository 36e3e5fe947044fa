import LKJWTLogic

/// A homeserver's 429 on a delayed-event restart or send: `Retry-After` and `retry_after_ms` (§9.3),
/// then the backoff that uses the hint (§8.7).
enum RetryAfterFuzzing {
    static let now: Int64 = 1_700_000_000_000
    static let sequenceStart = now - 5_000
    static let maxElapsed: Int64 = 3_600_000

    static let target = FuzzTarget(
        name: "retry-after", summary: "field 0 = Retry-After (absent with one field), rest = body of a 429; hint ≥ 0, backoff within E") { bytes in
            let input = FuzzInput(bytes)
            let header = input.fields.count > 1 ? input.text(0) : nil
            let body = input.fields.count > 1 ? input.rest(after: 1) : bytes
            let http = ScriptedHTTPClient { _ in
                OutboundResponse(status: 429, headers: header.map { [("Retry-After", $0)] } ?? [], body: body)
            }
            let client = DelayedEventClient(http: http, clock: FixedClock())
            guard case .retry(let hint, _) = client.perform(.restart, delayID: "syd_abc", baseURL: "https://cs.example.com", serverName: "example.com") else {
                invariant(false, "a 429 was not classified as retry")
                return
            }
            if let hint { invariant(hint >= 0, "negative hint \(hint) ms") }
            let decision = RetryPolicy.next(
                after: now, interval: 1000, sequenceStart: sequenceStart, maxElapsed: maxElapsed, retryAfter: hint, random: FixedRandomSource())
            if case .retry(let at, let nextInterval) = decision {
                invariant(at >= now, "retry at \(at) is before now")
                invariant(at - sequenceStart <= maxElapsed, "retry at \(at) sleeps past the activity's time")
                invariant(nextInterval > 0 && nextInterval <= RetryPolicy.maximumInterval, "next interval \(nextInterval)")
            }
        }
}
