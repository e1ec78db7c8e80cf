@testable import Casket
import Testing

/// `IndexLine.encode` writes a line field by field; its bytes must stay exactly those of the object of the
/// same fields through the generic `JSONValue` encoder (docs/FORMAT.md 5.2), which every reader and the
/// conformance vectors were made with.
@Suite("index lines: the direct encoder gives the generic encoder's bytes")
struct IndexLineEncodingTests {
    /// The line as the generic encoder gives it: the fields in the order FORMAT 5.2 lists them.
    static func generic(_ entry: IndexEntry, withOrigin: Bool) -> [UInt8] {
        var fields: [(key: String, value: JSONValue)] = [("key", .string(entry.key)), ("ts", .int(entry.timestamp))]
        if let value = entry.value {
            fields.append(("value", value))
            fields.append(("blobs", .array(entry.blobs.map { .array([.string($0.digest.hex), .int($0.size)]) })))
        } else {
            fields.append(("deleted", .bool(true)))
        }
        if withOrigin {
            fields.append(("w", .string(entry.origin.writer)))
            fields.append(("n", .int(entry.origin.line)))
        }
        if let meta = entry.meta { fields.append(("meta", meta)) }
        var out: [UInt8] = []
        JSONValue.object(JSONObject(fields)).encode(into: &out)
        out.append(0x0A)
        return out
    }

    @Test("entries, tombstones, several or no blobs, escapes, origins, metadata, extreme timestamps")
    func sameBytes() {
        let a = BlobRef(digest: Digest(hashing: [1, 2, 3]), size: 3)
        let b = BlobRef(digest: Digest(hashing: []), size: 0)
        let origin = IndexEntry.Origin(writer: "host-1-abcd", line: 7)
        let entries = [
            IndexEntry(key: "k", timestamp: 1, value: ValueTree.bytesNode(a), blobs: [a], origin: origin, meta: nil),
            IndexEntry(
                key: "quote \" back \\ nl \n tab \t nul \u{0} é 🙂", timestamp: .max,
                value: .object(
                    JSONObject([
                        ("#type", .string("Tree")),
                        ("items", .array([ValueTree.bytesNode(a), ValueTree.bytesNode(b)])),
                    ])), blobs: [a, b], origin: origin, meta: .object(JSONObject([("note", .string("x\"y"))]))),
            IndexEntry(
                key: "inline", timestamp: -5, value: ValueTree.inlineBytesNode([9, 9]), blobs: [], origin: origin,
                meta: nil),
            IndexEntry(key: "gone", timestamp: 0, value: nil, blobs: [], origin: origin, meta: nil),
            IndexEntry(key: "gone/meta", timestamp: .min, value: nil, blobs: [], origin: origin, meta: .int(3)),
        ]
        for entry in entries {
            for withOrigin in [false, true] {
                let direct = IndexLine.encode(entry, withOrigin: withOrigin)
                #expect(direct == IndexLineEncodingTests.generic(entry, withOrigin: withOrigin), "\(entry.key)")
                var appended: [UInt8] = Array("before\n".utf8)
                IndexLine.encode(entry, withOrigin: withOrigin, into: &appended)
                #expect(appended == Array("before\n".utf8) + direct, "appends after what the buffer holds")
                guard
                    case .success(.entry(let parsed)) = direct.dropLast().withUnsafeBytes({
                        IndexLine.parse($0, writer: "w", line: 1)
                    })
                else {
                    Issue.record("\(entry.key): the line does not parse back")
                    continue
                }
                #expect(parsed.key == entry.key && parsed.timestamp == entry.timestamp && parsed.blobs == entry.blobs)
            }
        }
    }
}
