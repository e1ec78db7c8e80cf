import Foundation

/// Helpers for value trees (docs/FORMAT.md, section 6).
public enum ValueTree {
    /// A payload found in a value tree: a blob, or bytes inlined in the entry.
    public enum Payload: Sendable, Equatable {
        /// The payload is this blob.
        case blob(BlobRef)
        /// The payload is inlined in the entry.
        case inline([UInt8])
    }

    /// A `Bytes` node for a payload stored as a blob.
    public static func bytesNode(_ ref: BlobRef) -> JSONValue {
        .object(JSONObject([("#type", .string("Bytes")), ("blob", .string(ref.digest.hex)), ("size", .int(ref.size))]))
    }

    /// A `Bytes` node holding its payload inline (base64).
    public static func inlineBytesNode(_ bytes: [UInt8]) -> JSONValue {
        .object(
            JSONObject([
                ("#type", .string("Bytes")), ("inline", .string(Data(bytes).base64EncodedString())),
                ("size", .int(bytes.count)),
            ]))
    }

    /// Every payload in a tree, in order of first appearance, without repeats.
    ///
    /// A payload is an object with a string `blob` (and integer `size`) or a string `inline`, anywhere in
    /// the tree except inside a `Json` node's `content`, which is user data.
    public static func payloads(in value: JSONValue) throws(CasketError) -> [Payload] {
        var out: [Payload] = []
        var seen = Set<Digest>()
        try collect(value, into: &out, seen: &seen, decodeInline: true)
        return out
    }

    /// The blobs of a tree, as an entry's `blobs` field lists them.
    public static func blobs(in value: JSONValue) throws(CasketError) -> [BlobRef] {
        var out: [Payload] = []
        var seen = Set<Digest>()
        try collect(value, into: &out, seen: &seen, decodeInline: false)
        return out.compactMap { payload in
            if case .blob(let ref) = payload { return ref }
            return nil
        }
    }

    private static func collect(
        _ value: JSONValue, into out: inout [Payload], seen: inout Set<Digest>, decodeInline: Bool
    ) throws(CasketError) {
        switch value {
        case .array(let elements):
            for element in elements { try collect(element, into: &out, seen: &seen, decodeInline: decodeInline) }
        case .object(let object):
            if let text = object["blob"]?.stringValue {
                let digest = try Digest(validating: text)
                guard let size = object["size"]?.intValue, size >= 0 else {
                    throw CasketError(.invalidArgument, "blob reference \(text) has no non-negative integer \"size\"")
                }
                if seen.insert(digest).inserted { out.append(.blob(BlobRef(digest: digest, size: size))) }
            } else if decodeInline, let text = object["inline"]?.stringValue {
                guard let data = Data(base64Encoded: text) else {
                    throw CasketError(.corrupt, "an \"inline\" payload is not valid base64")
                }
                out.append(.inline(Array(data)))
            }
            let isJSON = object["#type"]?.stringValue == "Json"
            for field in object.fields where !(isJSON && field.key == "content") {
                try collect(field.value, into: &out, seen: &seen, decodeInline: decodeInline)
            }
        default:
            return
        }
    }
}
