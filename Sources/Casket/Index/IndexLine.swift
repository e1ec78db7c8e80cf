/// Encoding and decoding of index lines (docs/FORMAT.md, sections 5.2 and 5.3).
enum IndexLine {
    /// What one well-formed line holds.
    enum Record {
        case entry(IndexEntry)
        case seal(timestamp: Int64)
    }

    /// Parses one line (without its `\n`). Returns the reason when the line is malformed.
    static func parse(_ bytes: UnsafeRawBufferPointer, writer: String, line: Int) -> Result<Record, IndexIssue.Reason> {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            return .failure(.notJSON(error.description))
        }
        guard case .object(let object) = json else { return .failure(.invalid("not a JSON object")) }
        if object["sealed"]?.boolValue == true {
            return .success(.seal(timestamp: object["ts"]?.intValue ?? 0))
        }
        guard let key = object["key"]?.stringValue, !key.isEmpty else {
            return .failure(.invalid("no non-empty string \"key\""))
        }
        guard let timestamp = object["ts"]?.intValue else { return .failure(.invalid("no integer \"ts\"")) }
        var origin = IndexEntry.Origin(writer: writer, line: line)
        if let w = object["w"]?.stringValue, let n = object["n"]?.intValue { origin = .init(writer: w, line: Int(n)) }
        let meta = object["meta"]
        if object["deleted"]?.boolValue == true {
            return .success(
                .entry(IndexEntry(key: key, timestamp: timestamp, value: nil, blobs: [], origin: origin, meta: meta)))
        }
        guard let value = object["value"], case .object = value else {
            return .failure(.invalid("neither an object \"value\" nor \"deleted\":true"))
        }
        guard let list = object["blobs"]?.arrayValue else { return .failure(.invalid("no array \"blobs\"")) }
        var blobs: [BlobRef] = []
        blobs.reserveCapacity(list.count)
        for item in list {
            guard let pair = item.arrayValue, pair.count == 2, let text = pair[0].stringValue,
                let size = pair[1].intValue, size >= 0
            else { return .failure(.invalid("a \"blobs\" item is not [hash, size]")) }
            guard let digest = Digest(text) else { return .failure(.badHash(text)) }
            blobs.append(BlobRef(digest: digest, size: size))
        }
        return .success(
            .entry(IndexEntry(key: key, timestamp: timestamp, value: value, blobs: blobs, origin: origin, meta: meta)))
    }

    /// The line for an entry, `\n` included. `withOrigin` adds `w` and `n` (compacted files).
    static func encode(_ entry: IndexEntry, withOrigin: Bool) -> [UInt8] {
        var out: [UInt8] = []
        encode(entry, withOrigin: withOrigin, into: &out)
        return out
    }

    /// Appends the line for an entry to `out`: the bytes of an object of these fields in this order, encoded
    /// as ``JSONValue/encode(into:)`` does, written field by field (a write session's batch takes each line
    /// this way, without a field list, `JSONValue`s or an array of its own).
    static func encode(_ entry: IndexEntry, withOrigin: Bool, into out: inout [UInt8]) {
        func field(_ name: StaticString) {
            name.withUTF8Buffer { out.append(contentsOf: $0) }
        }
        field("{\"key\":")
        JSONValue.encodeString(entry.key, into: &out)
        field(",\"ts\":")
        out.append(contentsOf: String(entry.timestamp).utf8)
        if let value = entry.value {
            field(",\"value\":")
            value.encode(into: &out)
            field(",\"blobs\":[")
            for (index, blob) in entry.blobs.enumerated() {
                field(index == 0 ? "[" : ",[")
                JSONValue.encodeString(blob.digest.hex, into: &out)
                out.append(UInt8(ascii: ","))
                out.append(contentsOf: String(blob.size).utf8)
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "]"))
        } else {
            field(",\"deleted\":true")
        }
        if withOrigin {
            field(",\"w\":")
            JSONValue.encodeString(entry.origin.writer, into: &out)
            field(",\"n\":")
            out.append(contentsOf: String(entry.origin.line).utf8)
        }
        if let meta = entry.meta {
            field(",\"meta\":")
            meta.encode(into: &out)
        }
        field("}\n")
    }

    static func encodeSeal(timestamp: Int64) -> [UInt8] {
        Array("{\"sealed\":true,\"ts\":\(timestamp)}\n".utf8)
    }
}

/// A line of an index file that was skipped, with where it is and why.
public struct IndexIssue: Sendable, Equatable, CustomStringConvertible {
    /// Why a line was skipped.
    public enum Reason: Error, Sendable, Equatable, CustomStringConvertible {
        /// The line is not JSON.
        case notJSON(String)
        /// The line is JSON but not an index line.
        case invalid(String)
        /// A blob hash field is not a well-formed hash.
        case badHash(String)

        /// A sentence.
        public var description: String {
            switch self {
            case .notJSON(let detail): return "not JSON (\(detail))"
            case .invalid(let detail): return "not an index line: \(detail)"
            case .badHash(let text):
                let shown = text.count > 60 ? String(text.prefix(57)) + "..." : text
                return "blob hash '\(shown)' is not 32 lowercase hex digits"
            }
        }
    }

    /// The index file.
    public var file: String
    /// The 1-based line number.
    public var line: Int
    /// Why it was skipped.
    public var reason: Reason

    /// `file:line: reason`.
    public var description: String { "\(file):\(line): \(reason)" }
}
