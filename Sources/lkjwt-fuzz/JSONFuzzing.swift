import LKJWTLogic

/// The strict JSON parser behind every request body, webhook, well-known and stored record.
enum JSONFuzzing {
    static let target = FuzzTarget(
        name: "json", summary: "JSONParser: parse, serialize, parse again gives the same value") { bytes in
            guard let value = try? JSONParser.parse(bytes) else { return }
            let text = value.serialized()
            let again: JSONValue
            do {
                again = try JSONParser.parse(text)
            } catch {
                invariant(false, "serialized output \(text.debugDescription) does not parse: \(error)")
                return
            }
            invariant(again == value, "round trip changed the value: \(text.debugDescription)")
            invariant(again.serialized() == text, "serializing is not stable: \(text.debugDescription)")
            invariant(text.utf8.count <= bytes.count, "compact output is longer than the input")
            _ = value["room_id"]?.int64Value
        }
}
