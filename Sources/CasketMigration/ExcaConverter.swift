import Casket

/// A byte range of a source file that becomes one blob.
public struct PayloadSource: Sendable, Hashable {
    /// The file, relative to the cache folder.
    public var path: String
    /// The first byte.
    public var offset: Int64
    /// The byte count.
    public var length: Int64
    /// True when the range is the whole file (`offset` 0, `length` its size).
    public var wholeFile: Bool

    /// Equal when the ranges are equal and the paths have the same bytes (two file names that differ only
    /// in Unicode normalisation are two files).
    public static func == (lhs: PayloadSource, rhs: PayloadSource) -> Bool {
        lhs.offset == rhs.offset && lhs.length == rhs.length && lhs.wholeFile == rhs.wholeFile
            && IndexKey(lhs.path) == IndexKey(rhs.path)
    }

    /// Hashes what ``==`` compares.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(IndexKey(path))
        hasher.combine(offset)
        hasher.combine(length)
        hasher.combine(wholeFile)
    }
}

/// An exca value translated to a Casket value tree whose `blob` fields are placeholders for the digests of
/// ``payloads`` (filled in by ``Converted/node(digests:)`` once they are stored).
struct Converted: Sendable {
    var template: JSONValue
    var payloads: [PayloadSource]

    static let marker: Character = "\u{1}"

    /// The tree with every placeholder replaced by the digest of its payload.
    func node(digests: [Digest]) -> JSONValue { Converted.fill(template, digests) }

    static func fill(_ value: JSONValue, _ digests: [Digest]) -> JSONValue {
        switch value {
        case .string(let text) where text.first == marker:
            guard let index = Int(text.dropFirst()), index < digests.count else { return value }
            return .string(digests[index].hex)
        case .array(let elements): return .array(elements.map { fill($0, digests) })
        case .object(let object): return .object(JSONObject(object.fields.map { ($0.key, fill($0.value, digests)) }))
        default: return value
        }
    }
}

/// Why an exca entry cannot be migrated.
struct Unmigratable: Error, Sendable {
    var reason: String
    /// The kind of failure: the code of the file-system refusal (``CasketError/Code/notFound``,
    /// ``CasketError/Code/notARegularFile``, ``CasketError/Code/unsafePath`` for a path that would leave
    /// the cache folder or go through a link), ``CasketError/Code/unsupportedValue`` for what exca wrote but the format cannot hold.
    var code: CasketError.Code = .unsupportedValue
}

/// Translates exca info dicts to Casket nodes (docs/FORMAT.md, section 6; docs/MIGRATION.md), checking that
/// every payload file exists and every range is within its file. Reads only small metadata: spilled JSON
/// trees and AutoPickle pickles.
///
/// Every `filename` (and BrainVision file) is judged by ``ConfinedFolder``'s one rule: a relative path of
/// plain names, reached without following a symlink, naming a regular file with one link. Anything else makes
/// the entry unmigratable, with the refusal as its reason.
final class ExcaConverter {
    let folder: ConfinedFolder
    /// Keyed by path bytes: two names that differ only in normalisation are two files.
    private var judged: [IndexKey: Result<FileStatus, Unmigratable>] = [:]
    /// Files above this size are not read into memory to look for references (AutoPickle pickles).
    static let smallFileLimit: Int64 = 256 << 20

    init(folder: ConfinedFolder) { self.folder = folder }

    /// The identity of every payload file judged sound so far: what the run opens and reclaim deletes.
    var identities: [IndexKey: FileStatus] {
        var out: [IndexKey: FileStatus] = [:]
        for (path, result) in judged { if case .success(let status) = result { out[path] = status } }
        return out
    }

    /// The identity of a payload file judged sound.
    func identity(of path: String) -> FileStatus? {
        if case .success(let status) = judged[IndexKey(path)] { return status }
        return nil
    }

    /// Refuses a payload path that exca never writes and reclaim must never delete as a per-key file: one
    /// inside the store's own folders (`blobs/`, `index/`, `casket.json`...: when the store lives in the cache
    /// folder, reclaim would delete the store's files), or an index file of the cache (`*-info.jsonl`,
    /// `.cache_type`, a root `*.key`: reclaim would delete another shard's index before its keys are verified).
    static func refuseReserved(_ path: String) throws(Unmigratable) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if let first = parts.first, ExcaCache.storeNames.contains(first) {
            throw Unmigratable(
                reason: "'\(path)' names the store's own '\(first)': exca never writes there", code: .unsafePath)
        }
        let last = parts.last ?? ""
        if last.hasSuffix("-info.jsonl") || last == ".cache_type" || (parts.count == 1 && last.hasSuffix(".key")) {
            throw Unmigratable(
                reason: "'\(path)' names an index file of the exca cache, not a payload", code: .unsafePath)
        }
    }

    /// The size of a regular file with one link inside the cache folder, outside the store's own files.
    func size(of path: String) throws(Unmigratable) -> Int64 {
        if judged[IndexKey(path)] == nil {
            do {
                try ExcaConverter.refuseReserved(path)
            } catch {
                judged[IndexKey(path)] = .failure(error)
                throw error
            }
            do {
                judged[IndexKey(path)] = .success(try folder.file(path))
            } catch let error where error.code == .notFound {
                judged[IndexKey(path)] = .failure(Unmigratable(reason: "missing file '\(path)'", code: .notFound))
            } catch {
                judged[IndexKey(path)] = .failure(Unmigratable(reason: error.message, code: error.code))
            }
        }
        switch judged[IndexKey(path)]! {
        case .success(let status): return status.size
        case .failure(let failure): throw failure
        }
    }

    func convert(_ line: ExcaLine) -> Result<Converted, Unmigratable> {
        var payloads: [PayloadSource] = []
        do {
            let node = try node(type: line.type, fields: line.fields, payloads: &payloads)
            return .success(Converted(template: node, payloads: payloads))
        } catch {
            return .failure(error)
        }
    }

    private func placeholder(_ source: PayloadSource, _ payloads: inout [PayloadSource]) -> JSONValue {
        payloads.append(source)
        return .string("\(Converted.marker)\(payloads.count - 1)")
    }

    private func range(_ fields: JSONObject, length: Int64) throws(Unmigratable) -> PayloadSource {
        guard let file = fields["filename"]?.stringValue else { throw Unmigratable(reason: "no \"filename\"") }
        guard let offset = fields["offset"]?.intValue, offset >= 0 else {
            throw Unmigratable(reason: "no non-negative integer \"offset\" for '\(file)'")
        }
        let size = try size(of: file)
        guard length >= 0, offset <= size, length <= size - offset else {
            throw Unmigratable(
                reason:
                    "offset out of range: [\(offset), \(offset)+\(length)) beyond the end of '\(file)' (\(size) bytes)")
        }
        return PayloadSource(path: file, offset: offset, length: length, wholeFile: false)
    }

    private func whole(_ fields: JSONObject) throws(Unmigratable) -> PayloadSource {
        guard let file = fields["filename"]?.stringValue else { throw Unmigratable(reason: "no \"filename\"") }
        let size = try size(of: file)
        return PayloadSource(path: file, offset: 0, length: size, wholeFile: true)
    }

    private func readSmall(_ source: PayloadSource) throws(Unmigratable) -> [UInt8] {
        guard source.length <= ExcaConverter.smallFileLimit else {
            throw Unmigratable(reason: "'\(source.path)' is too large (\(source.length) bytes) to read its references")
        }
        do {
            let file = try folder.open(source.path, expecting: identity(of: source.path))
            return try file.read(offset: source.offset, length: Int(source.length))
        } catch {
            throw Unmigratable(reason: "cannot read '\(source.path)': \(error)", code: error.code)
        }
    }

    private func payloadNode(_ type: String, _ source: PayloadSource, _ payloads: inout [PayloadSource]) -> JSONValue {
        .object(
            JSONObject([
                ("#type", .string(type)), ("blob", placeholder(source, &payloads)), ("size", .int(source.length)),
            ]))
    }

    func node(type: String, fields: JSONObject, payloads: inout [PayloadSource]) throws(Unmigratable) -> JSONValue {
        switch type {
        case "TorchTensor" where fields["dtype"] == nil:
            return try file(type: type, fields: fields, &payloads)  // a `.pt` file (exca <= 0.5.11)
        case "MemmapArray", "ContiguousMemmapArray", "MemmapArrayFile", "TorchTensor":
            let length: Int64
            switch ExcaDType.byteCount(shape: fields["shape"], dtype: fields["dtype"]) {
            case .success(let n): length = n
            case .failure(let failure): throw failure
            }
            let source = try range(fields, length: length)
            var object = JSONObject([
                ("#type", .string(type == "MemmapArrayFile" ? "MemmapArray" : type)),
                ("blob", placeholder(source, &payloads)),
                ("size", .int(length)), ("dtype", fields["dtype"]!), ("shape", fields["shape"]!),
            ])
            for field in fields where !["filename", "offset", "shape", "dtype"].contains(field.key) {
                object[field.key] = field.value
            }
            return .object(object)
        case "Json":
            if let content = fields["content"] {
                return .object(JSONObject([("#type", .string("Json")), ("content", content)]))
            }
            guard let length = fields["length"]?.intValue else {
                throw Unmigratable(reason: "Json without content or length")
            }
            return payloadNode("Json", try range(fields, length: length), &payloads)
        case "String":
            guard let length = fields["length"]?.intValue else { throw Unmigratable(reason: "String without length") }
            return payloadNode("String", try range(fields, length: length), &payloads)
        case "Pickle", "NumpyArray", "PandasDataFrame", "ParquetPandasDataFrame", "NibabelNifti", "MneRawFif":
            return payloadNode(type, try whole(fields), &payloads)
        case "NumpyMemmapArray":
            return payloadNode("NumpyArray", try whole(fields), &payloads)
        case "MneRaw":
            return payloadNode("MneRawFif", try whole(fields), &payloads)
        case "MneRawBrainVision":
            return try brainVision(fields, &payloads)
        case "Auto", "AutoPickle":
            guard let content = fields["content"] else { throw Unmigratable(reason: "\(type) without content") }
            return try auto(content, &payloads)
        case "DataDict":
            return try dataDict(fields, &payloads)
        default:
            return try file(type: type, fields: fields, &payloads)
        }
    }

    /// An unknown handler: `filename+offset+length` is a range, `filename` alone the whole file.
    private func file(type: String, fields: JSONObject, _ payloads: inout [PayloadSource]) throws(Unmigratable)
        -> JSONValue
    {
        guard let name = fields["filename"]?.stringValue else {
            throw Unmigratable(reason: "unknown exca type '\(type)' without a \"filename\"")
        }
        let source: PayloadSource
        if fields["offset"] != nil, let length = fields["length"]?.intValue {
            source = try range(fields, length: length)
        } else {
            source = try whole(fields)
        }
        var rest = JSONObject()
        for field in fields where field.key != "filename" { rest[field.key] = field.value }
        return .object(
            JSONObject([
                ("#type", .string("File")), ("blob", placeholder(source, &payloads)), ("size", .int(source.length)),
                ("exca_type", .string(type)), ("fields", .object(rest)), ("name", .string(name)),
            ]))
    }

    private func brainVision(_ fields: JSONObject, _ payloads: inout [PayloadSource]) throws(Unmigratable) -> JSONValue
    {
        guard let directory = fields["filename"]?.stringValue else { throw Unmigratable(reason: "no \"filename\"") }
        try ExcaConverter.refuseReserved(directory)
        let names: [String]
        do {
            names = try folder.folder(directory).entries().map(\.name)
        } catch let error where error.code == .notFound {
            throw Unmigratable(reason: "missing directory '\(directory)'", code: .notFound)
        } catch {
            throw Unmigratable(reason: error.message, code: error.code)
        }
        var files = JSONObject()
        for name in names.sorted(by: { IndexKey($0) < IndexKey($1) }) {
            // Every name must be a regular file: a link, a FIFO or a subfolder makes the value unmigratable.
            let path = directory + "/" + name
            let size = try size(of: path)
            let source = PayloadSource(path: path, offset: 0, length: size, wholeFile: true)
            files[name] = .object(JSONObject([("blob", placeholder(source, &payloads)), ("size", .int(size))]))
        }
        guard files.fields.contains(where: { $0.key.hasSuffix(".vhdr") }) else {
            throw Unmigratable(reason: "directory '\(directory)' has no .vhdr file")
        }
        return .object(JSONObject([("#type", .string("MneRawBrainVision")), ("files", .object(files))]))
    }

    /// An Auto value: `content` is a tree of nodes, or one node holding the tree (spilled Json, AutoPickle's
    /// Pickle) or standing for the value (a delegated leaf).
    private func auto(_ content: JSONValue, _ payloads: inout [PayloadSource]) throws(Unmigratable) -> JSONValue {
        if case .object(var wrapper) = content, let type = wrapper["#type"]?.stringValue {
            wrapper["#type"] = nil
            if type == "Json" {
                let spilled: JSONValue
                if let inline = wrapper["content"] {
                    spilled = inline
                } else {
                    guard let length = wrapper["length"]?.intValue else {
                        throw Unmigratable(reason: "spilled Auto tree without length")
                    }
                    let bytes = try readSmall(try range(wrapper, length: length))
                    do {
                        spilled = try JSONParser.parse(bytes)
                    } catch {
                        throw Unmigratable(
                            reason:
                                "spilled Auto tree in '\(wrapper["filename"]?.stringValue ?? "?")' is not JSON (\(error))"
                        )
                    }
                }
                return .object(JSONObject([("#type", .string("Auto")), ("content", try tree(spilled, &payloads))]))
            }
            if type == "Pickle" { return try autoPickle(wrapper, &payloads) }
            let leaf = try node(type: type, fields: wrapper, payloads: &payloads)
            return .object(JSONObject([("#type", .string("Auto")), ("content", leaf)]))
        }
        return .object(JSONObject([("#type", .string("Auto")), ("content", try tree(content, &payloads))]))
    }

    private func tree(_ value: JSONValue, _ payloads: inout [PayloadSource]) throws(Unmigratable) -> JSONValue {
        switch value {
        case .object(var object):
            if let type = object["#type"]?.stringValue {
                object["#type"] = nil
                return try node(type: type, fields: object, payloads: &payloads)
            }
            var out = JSONObject()
            for field in object { out.fields.append((field.key, try tree(field.value, &payloads))) }
            return .object(out)
        case .array(let elements):
            var out: [JSONValue] = []
            for element in elements { out.append(try tree(element, &payloads)) }
            return .array(out)
        default:
            return value
        }
    }

    /// AutoPickle: the pickle is kept as is; every info dict it embeds becomes a `refs` item with its blob.
    private func autoPickle(_ fields: JSONObject, _ payloads: inout [PayloadSource]) throws(Unmigratable) -> JSONValue {
        let source = try whole(fields)
        let bytes = try readSmall(source)
        let dicts: [JSONObject]
        do {
            dicts = try PickleScanner.infoDicts(in: bytes)
        } catch {
            throw Unmigratable(reason: "AutoPickle '\(source.path)' cannot be scanned for references: \(error)")
        }
        let blob = placeholder(source, &payloads)
        var refs: [JSONValue] = []
        for var info in dicts {
            let type = info["#type"]!.stringValue!
            info["#type"] = nil
            var inner: [PayloadSource] = []
            _ = try node(type: type, fields: info, payloads: &inner)
            for ref in inner {
                var object = JSONObject([("filename", .string(ref.path))])
                if !ref.wholeFile { object["offset"] = .int(ref.offset) }
                object["blob"] = placeholder(ref, &payloads)
                object["size"] = .int(ref.length)
                refs.append(.object(object))
            }
        }
        return .object(
            JSONObject([
                ("#type", .string("AutoPickle")), ("blob", blob), ("size", .int(source.length)), ("refs", .array(refs)),
            ]))
    }

    private func dataDict(_ fields: JSONObject, _ payloads: inout [PayloadSource]) throws(Unmigratable) -> JSONValue {
        var optimized = JSONObject()
        for field in fields["optimized"]?.objectValue ?? JSONObject() {
            guard let cls = field.value["cls"]?.stringValue, let info = field.value["info"]?.objectValue else {
                throw Unmigratable(reason: "DataDict item '\(field.key)' has no cls/info")
            }
            optimized[field.key] = try node(type: cls, fields: info, payloads: &payloads)
        }
        var pickled: JSONValue = .null
        if let pickle = fields["pickled"]?.objectValue, pickle["filename"] != nil {
            pickled = payloadNode("Pickle", try whole(pickle), &payloads)
        }
        return .object(
            JSONObject([("#type", .string("DataDict")), ("optimized", .object(optimized)), ("pickled", pickled)]))
    }
}
