/// Matrix canonical JSON (spec appendix): compact, object keys sorted by code point, strings escaped
/// only where JSON requires it.
public enum CanonicalJSON {
    public static func encode(_ value: JSONValue) -> String {
        sorted(value).serialized()
    }

    private static func sorted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let items): .array(items.map(sorted))
        case .object(let members):
            .object(
                members.map { JSONMember($0.key, sorted($0.value)) }
                    .sorted { Array($0.key.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.key.unicodeScalars.map(\.value)) }
            )
        default: value
        }
    }
}
