/// Header fields in the order they were sent or are to be written: one collection for requests,
/// responses and outbound answers. Names compare case-insensitively (RFC 9110 §5.1); where a name
/// occurs more than once, a lookup gives the last value (redirects and proxies append).
public struct HTTPHeaders: RandomAccessCollection, Sendable, Equatable, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)

    private var fields: [Element]

    public init(_ fields: [Element] = []) {
        self.fields = fields
    }

    public init(arrayLiteral fields: Element...) {
        self.fields = fields
    }

    public init(dictionaryLiteral fields: (String, String)...) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public var startIndex: Int { fields.startIndex }
    public var endIndex: Int { fields.endIndex }
    public subscript(position: Int) -> Element { fields[position] }

    /// The value of the last field named `name`, in any case.
    public subscript(name: String) -> String? {
        fields.last { HTTPHeaders.sameName($0.name, name) }?.value
    }

    public mutating func append(name: String, value: String) {
        fields.append((name, value))
    }

    public static func + (lhs: HTTPHeaders, rhs: HTTPHeaders) -> HTTPHeaders {
        HTTPHeaders(lhs.fields + rhs.fields)
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// ASCII case-insensitive, without building lower-cased copies: every request looks headers up.
    static func sameName(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8) { $0 == $1 || ($0 | 0x20 == $1 | 0x20 && ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A) }
    }
}
