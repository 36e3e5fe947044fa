/// Reads one JSON object of a request schema strictly (contract §3.3): members outside the schema,
/// wrong types and non-integer numbers are errors; absent and `null` members read as empty.
struct JSONObjectReader {
    struct Failure: Error, Sendable, CustomStringConvertible {
        let description: String
    }

    private let value: JSONValue

    /// A top-level or nested `null` reads as `{}`.
    init(_ value: JSONValue, schema: Set<String>) throws(Failure) {
        switch value {
        case .null:
            self.value = .object([])
        case .object(let members):
            if let unknown = members.first(where: { !schema.contains($0.key) }) {
                throw Failure(description: "unknown member \"\(unknown.key)\"")
            }
            self.value = value
        default:
            throw Failure(description: "expected a JSON object")
        }
    }

    /// Absent or `null` → "".
    func string(_ key: String) throws(Failure) -> String {
        switch value[key] {
        case nil, .null?: return ""
        case .string(let text)?: return text
        default: throw Failure(description: "\"\(key)\" is not a string")
        }
    }

    /// Absent or `null` → nil; only integer literals within signed 64 bits.
    func integer(_ key: String) throws(Failure) -> Int64? {
        switch value[key] {
        case nil, .null?: return nil
        case .number(let literal)?:
            guard let number = Int64(literal) else { throw Failure(description: "\"\(key)\" is not a 64-bit integer") }
            return number
        default: throw Failure(description: "\"\(key)\" is not an integer")
        }
    }

    func object(_ key: String, schema: Set<String>) throws(Failure) -> JSONObjectReader {
        try JSONObjectReader(value[key] ?? .null, schema: schema)
    }
}
