extension ValueTree {
    /// The bytes of the payloads inlined in a tree (their `size` fields), outside `Json` content, as
    /// ``IndexEntry/payloadBytes`` counts them next to the blobs.
    public static func inlineBytes(in value: JSONValue) -> Int64 {
        switch value {
        case .array(let elements):
            return elements.reduce(0) { $0 + inlineBytes(in: $1) }
        case .object(let object):
            var total: Int64 = 0
            if object["blob"] == nil, object["inline"]?.stringValue != nil, let size = object["size"]?.intValue,
                size >= 0
            {
                total += size
            }
            let isJSON = object["#type"]?.stringValue == "Json"
            for field in object.fields where !(isJSON && field.key == "content") {
                total += inlineBytes(in: field.value)
            }
            return total
        default:
            return 0
        }
    }
}
