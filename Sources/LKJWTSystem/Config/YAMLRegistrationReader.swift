import CYAML
import LKJWTLogic

/// Reads the tokens of an application-service registration file with libyaml (AS-MODE-NOTES §1.2
/// step 2); `Configuration.parse` takes `tokens(fromYAML:)` as its registration reader.
public enum YAMLRegistrationReader {
    /// Reads `as_token` and `hs_token` from the YAML text of a registration file with libyaml.
    /// Each must be a string: a quoted scalar, or a plain one that YAML would not read as null, a
    /// boolean or a number. The error is the start-up text (§1.2 step 2).
    public static func tokens(fromYAML text: String) throws(ConfigurationError) -> ApplicationServiceRegistration.Tokens {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw .registrationUnparsable("out of memory") }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        var document = yaml_document_t()
        let loaded = bytes.withUnsafeMutableBufferPointer { buffer in
            // libyaml reads the input during yaml_parser_load only, so the buffer outlives it.
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            return yaml_parser_load(&parser, &document)
        }
        guard loaded == 1 else {
            let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
            throw .registrationUnparsable("\(problem) at line \(parser.problem_mark.line + 1) column \(parser.problem_mark.column + 1)")
        }
        defer { yaml_document_delete(&document) }
        guard let root = yaml_document_get_root_node(&document), root.pointee.type == YAML_MAPPING_NODE else {
            throw .registrationInvalidRoot
        }
        var values: [String: UnsafeMutablePointer<yaml_node_t>] = [:]
        let pairs = root.pointee.data.mapping.pairs
        var pair = pairs.start
        while let current = pair, current != pairs.top {
            if let key = yaml_document_get_node(&document, current.pointee.key), key.pointee.type == YAML_SCALAR_NODE,
                let value = yaml_document_get_node(&document, current.pointee.value)
            {
                // A later duplicate wins, as with JSON members (§3.3).
                values[scalarText(key)] = value
            }
            pair = current + 1
        }
        func string(_ property: String) throws(ConfigurationError) -> String {
            guard let node = values[property] else { throw .registrationMissingProperty(property) }
            guard node.pointee.type == YAML_SCALAR_NODE, isString(node) else { throw .registrationInvalidProperty(property) }
            return scalarText(node)
        }
        return ApplicationServiceRegistration.Tokens(asToken: try string("as_token"), hsToken: try string("hs_token"))
    }

    private static func scalarText(_ node: UnsafeMutablePointer<yaml_node_t>) -> String {
        let scalar = node.pointee.data.scalar
        guard let value = scalar.value, scalar.length > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: value, count: scalar.length), as: UTF8.self)
    }

    /// Quoted and block scalars are strings; a plain scalar is one unless the YAML core schema
    /// resolves it to null, a boolean or a number (what the homeserver's YAML loader does too).
    /// An explicit tag decides for itself.
    private static func isString(_ node: UnsafeMutablePointer<yaml_node_t>) -> Bool {
        if let tag = node.pointee.tag.map({ String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }),
            tag != "tag:yaml.org,2002:str"
        {
            return false
        }
        guard node.pointee.data.scalar.style == YAML_PLAIN_SCALAR_STYLE else { return true }
        return !isCoreSchemaNonString(scalarText(node))
    }

    static func isCoreSchemaNonString(_ text: String) -> Bool {
        let nonStrings: Set<String> = [
            "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
            ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
        ]
        if nonStrings.contains(text) { return true }
        var scalars = Substring(text)
        if scalars.hasPrefix("0x") { return !scalars.dropFirst(2).isEmpty && scalars.dropFirst(2).allSatisfy(\.isHexDigit) }
        if scalars.hasPrefix("0o") { return !scalars.dropFirst(2).isEmpty && scalars.dropFirst(2).allSatisfy { ("0"..."7").contains($0) } }
        if scalars.first == "-" || scalars.first == "+" { scalars = scalars.dropFirst() }
        // [0-9]+ ( . [0-9]* )? ( [eE] [-+]? [0-9]+ )?  or  . [0-9]+ …
        let mantissa = scalars.prefix { $0 != "e" && $0 != "E" }
        let exponent = scalars.dropFirst(mantissa.count)
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard !mantissa.isEmpty, parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) }), parts.contains(where: { !$0.isEmpty }) else { return false }
        if exponent.isEmpty { return true }
        var digits = exponent.dropFirst()
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        return !digits.isEmpty && digits.allSatisfy(\.isASCIIDigit)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
