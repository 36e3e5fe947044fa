/// An HTTP request method (RFC 9110 §9), as the client sent it: methods are case-sensitive, and one
/// this service does not know is still a method (it gets a 405, not a 400).
public struct HTTPMethod: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public static let get = HTTPMethod(rawValue: "GET")
    public static let head = HTTPMethod(rawValue: "HEAD")
    public static let post = HTTPMethod(rawValue: "POST")
    static let options = HTTPMethod(rawValue: "OPTIONS")

    public var description: String { rawValue }
}
