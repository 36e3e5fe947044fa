import Logging

extension Logger.MetadataValue {
    /// Longest log value taken from a request or a remote server (§13.4).
    static let maximumUntrustedBytes = 255

    /// A value a request or a remote server chose (a room, a user ID, a server's error text), cut to
    /// 255 bytes at a scalar boundary, so that no request can write kilobytes into the log (§13.4).
    static func untrusted(_ value: String) -> Logger.MetadataValue {
        .string(value.cutToUTF8Bytes(maximumUntrustedBytes))
    }
}

extension String {
    /// The longest prefix of whole Unicode scalars that fits in `limit` UTF-8 bytes.
    func cutToUTF8Bytes(_ limit: Int) -> String {
        guard utf8.count > limit else { return self }
        var bytes = 0
        var end = unicodeScalars.startIndex
        for index in unicodeScalars.indices {
            let width = UTF8.width(unicodeScalars[index])
            guard bytes + width <= limit else { break }
            bytes += width
            end = unicodeScalars.index(after: index)
        }
        return String(unicodeScalars[..<end])
    }
}
