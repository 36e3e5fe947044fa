import Testing

@testable import LKJWTLogic

/// Inputs the rfc3339 fuzz target found (scripts/fuzz): every time `parse` accepts, `format` writes
/// back as the same instant, so a stored record survives being rewritten.
struct RFC3339Tests {
    @Test(arguments: [
        // A leap second or an offset past the last representable instant reads as year 10000, which
        // was written back as "0000-01-01T00:00:00.999Z".
        "9999-12-31T23:59:60.999z", "9999-12-31T23:00:00-01:00",
        // …or before year 0, written back with a '/' for a digit.
        "0000-01-01T00:00:00+00:01",
        // Offsets beyond RFC 3339's 23:59.
        "2023-11-14T22:13:20+24:00", "2023-11-14T22:13:20-99:00", "2023-11-14T22:13:20+00:60",
    ])
    func timesOutsideTheWritableRangeAreRejected(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test(arguments: [
        "0000-01-01T00:00:00Z", "0000-01-01T00:00:00-23:59", "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59+23:59",
        "2023-11-14T23:13:20.5+01:00", "2016-12-31T23:59:60Z",
    ])
    func acceptedTimesRoundTrip(text: String) throws {
        let milliseconds = try #require(RFC3339.parse(text))
        #expect(RFC3339.parse(RFC3339.format(milliseconds: milliseconds)) == milliseconds)
    }
}
