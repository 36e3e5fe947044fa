/// Arithmetic on numbers that come from outside: requests, remote servers, stored records, the clock
/// (contract §13.5). Swift traps on overflow; these stop at the bounds instead, so that a hostile
/// `retry_after_ms` or a corrupt stored time means "very late", never a crashed worker.
extension Int64 {
    /// `self + other`, stopping at `.min`/`.max`.
    func saturatingAdding(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// `self - other`, stopping at `.min`/`.max`.
    public func saturatingSubtracting(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other < 0 ? .max : .min
    }

    /// `self × other`, stopping at `.min`/`.max`.
    func saturatingMultiplied(by other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        guard overflow else { return product }
        return (self < 0) == (other < 0) ? .max : .min
    }

    /// `value` rounded toward zero, stopping at the bounds; NaN is 0 (`Int64(Double)` traps on all three).
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_808.0 {
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self = Int64(value.rounded(.towardZero))
        }
    }

    /// A non-empty run of ASCII digits; a value beyond `Int64.max` is `.max` (a number too large to
    /// represent is still a large number). nil when `text` is anything but digits.
    public init?(saturatingDigits text: Substring) {
        guard !text.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value.saturatingMultiplied(by: 10).saturatingAdding(Int64(byte - UInt8(ascii: "0")))
        }
        self = value
    }
}

extension Comparable {
    /// `self`, moved into `range` if it lies outside.
    func clamped(to range: ClosedRange<Self>) -> Self {
        Swift.min(Swift.max(self, range.lowerBound), range.upperBound)
    }
}
