public import Casket
import Foundation

/// One live line of an exca info file (or one `.key` file of an exca 0.1 cache).
public struct ExcaLine: Sendable {
    /// The info file, relative to the cache folder (for 0.1 caches, the `.key` file).
    public var file: String
    /// Its 1-based line number (1 for a `.key` file).
    public var line: Int
    /// The key.
    public var key: String
    /// The handler: `#type`, or for legacy files the `cache_type` of the `metadata=` header.
    public var type: String
    /// The line's fields without `#key` and `#type`.
    public var fields: JSONObject
    /// True when written by exca 0.2-0.5.11 (header files: file names relative to the root, legacy types).
    public var legacy: Bool
}

/// An info file and the files its writer owns: what reclaim deletes together.
public struct ExcaShard: Sendable {
    /// The info file, relative to the cache folder.
    public var infoFile: String
    /// The writer prefix (`{host}-{tid}`): the file name without `-info.jsonl`.
    public var prefix: String
    /// The writer's shared data files that exist, relative to the cache folder.
    public var dataFiles: [String]
    /// The identity of the info file and of each data file when they were read: reclaim deletes a name only
    /// while it still is that file.
    var identities: [IndexKey: FileStatus] = [:]
    /// Why files of this shard cannot be read (a data file that is a symlink, a folder, a hard link...):
    /// reclaim keeps such a shard whole.
    var refused: [String] = []
}

/// A warning met while reading a cache: an unparsable line in the middle of a file and the like.
public struct ExcaWarning: Sendable, CustomStringConvertible {
    /// The file, relative to the cache folder.
    public var file: String
    /// The 1-based line number, 0 when the warning is about the whole file.
    public var line: Int
    /// What is wrong.
    public var message: String

    /// `file:line: message`.
    public var description: String { "\(file):\(line): \(message)" }
}

/// Everything read from an exca `CacheDict` folder, any version from 0.1 to 0.6.0. Only reads.
///
/// Winner candidates: within one info file a later line for a key replaces an earlier one (as exca does);
/// the remaining copies are ordered by info file name (bytes). ``Migrator`` then picks the first copy
/// whose payload files exist and whose ranges are in bounds.
public struct ExcaCache: Sendable {
    /// The cache folder.
    public var root: String
    /// The cache folder, open: every file the cache names is reached through it, never outside it.
    let folder: ConfinedFolder
    /// Every key's copies, one per info file, in info-file name order. Keys are byte strings, as in exca.
    public var copies: [IndexKey: [ExcaLine]]
    /// Every info file with its writer's data files, in name order.
    public var shards: [ExcaShard]
    /// Lines skipped with a warning.
    public var warnings: [ExcaWarning]
    /// Live lines overridden by a later line of the same file (exca ignores them too).
    public var overriddenLines: Int
    /// Which layout the folder holds: `"0.1"`, `"0.2-0.5.11"`, `"0.5.12+"`, or a mix joined by `+`.
    public var layouts: Set<String>

    /// The keys, sorted by bytes.
    public var keys: [String] { copies.keys.sorted().map(\.string) }

    /// Names at the root of a cache folder that belong to a Casket store (in-place migration) and are never
    /// read as exca files.
    public static let storeNames: Set<String> = [
        "casket.json", "blobs", "tmp", "index", "gc", "quarantine", "claims", "packs",
    ]

    /// Reads the cache folder's index files: root `*-info.jsonl`, or `.cache_type` with `*.key` (0.1).
    ///
    /// The folder may be named through a symlink; nothing below it is followed (``ConfinedFolder``). An index
    /// file that is not a regular file with one link (a symlink, a FIFO, a hard link) is not read, with a
    /// warning.
    ///
    /// - Throws: ``CasketError/Code/notFound`` when the folder does not exist.
    public static func read(at root: String) throws(CasketError) -> ExcaCache {
        let folder: ConfinedFolder
        do {
            folder = try ConfinedFolder.open(root)
        } catch let error where error.code == .notFound {
            throw CasketError(.notFound, "exca cache folder '\(root)' does not exist", path: root, errno: error.errno)
        }
        let names = try folder.entries().map(\.name).filter { !storeNames.contains($0) }
        var cache = ExcaCache(
            root: root, folder: folder, copies: [:], shards: [], warnings: [], overriddenLines: 0, layouts: [])
        let infoFiles = names.filter { $0.hasSuffix("-info.jsonl") }
        for name in infoFiles {
            try cache.readInfoFile(name)
        }
        if names.contains(".cache_type") {
            try cache.readFlat(names: names)
        } else if infoFiles.isEmpty && (try? folder.status("casket.json")) == nil {
            // Nothing to migrate and not an in-place store whose shards were all reclaimed: most likely the
            // wrong folder (MapInfra and Steps keep the cache folder a few levels down).
            let found = ExcaCache.cacheFolders(under: folder, depth: 4, limit: 5)
            let hint =
                found.isEmpty
                ? "" : "; exca caches below it: " + found.map { "'\($0)'" }.joined(separator: ", ")
            throw CasketError(
                .notFound, "'\(root)' is not an exca cache folder: it has no *-info.jsonl and no .cache_type\(hint)",
                path: root)
        }
        return cache
    }

    /// Folders under `root` (at most `depth` levels down, symlinks not followed) that hold exca index files,
    /// sorted, at most `limit`.
    static func cacheFolders(under root: ConfinedFolder, depth: Int, limit: Int) -> [String] {
        var found: [String] = []
        func visit(_ folder: ConfinedFolder, _ level: Int) {
            guard level <= depth, found.count < limit, let entries = try? folder.entries() else { return }
            if level > 0
                && entries.contains(where: { $0.name.hasSuffix("-info.jsonl") || $0.name == ".cache_type" })
            {
                found.append(folder.path)
                return
            }
            for entry in entries where entry.status.kind == .directory && !entry.name.hasPrefix(".") {
                guard level > 0 || !storeNames.contains(entry.name),
                    let child = try? folder.folder(entry.name)
                else { continue }
                visit(child, level + 1)
            }
        }
        visit(root, 0)
        return found
    }

    /// Reads one info file. One that is not a regular file with one link is skipped with a warning, and
    /// is no shard: reclaim never deletes it.
    mutating func readInfoFile(_ name: String) throws(CasketError) {
        let bytes: [UInt8]
        let identity: FileStatus
        do {
            let file = try folder.open(name)
            identity = file.status
            bytes = try file.readAll()
        } catch let error
            where error.code == .notARegularFile || error.code == .unsafePath
            || error.code == .changedWhileReading
        {
            warnings.append(ExcaWarning(file: name, line: 0, message: "info file not read: \(error.message)"))
            return
        }
        let prefix = String(name.dropLast("-info.jsonl".count))
        var legacyType: String? = nil
        var perKey: [IndexKey: ExcaLine] = [:]
        var order: [IndexKey] = []
        // Split into lines, remembering whether the last one ended with "\n".
        var lines: [(start: Int, end: Int)] = []
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == 0x0A {
            lines.append((start, index))
            start = index + 1
        }
        if start < bytes.count { lines.append((start, bytes.count)) }
        let metadataPrefix = Array("metadata=".utf8)
        for (number, range) in lines.enumerated() {
            let lineNumber = number + 1
            let slice = bytes[range.start..<range.end]
            // exca's rule: a line starting with a space, or all whitespace, is deleted.
            if slice.first == 0x20 || slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            if number == 0 && slice.starts(with: metadataPrefix) {
                let header = try? JSONParser.parse(Array(slice.dropFirst(metadataPrefix.count)))
                if let type = header?["cache_type"]?.stringValue {
                    legacyType = type
                } else {
                    warnings.append(ExcaWarning(file: name, line: lineNumber, message: "unreadable metadata= header"))
                    legacyType = "Unknown"
                }
                continue
            }
            let parsed: JSONValue
            do {
                parsed = try JSONParser.parse(Array(slice))
            } catch {
                let isLast = number == lines.count - 1
                // exca tolerates an unparsable last line (an append in progress); a middle one is a warning.
                if !isLast {
                    warnings.append(
                        ExcaWarning(file: name, line: lineNumber, message: "unparsable line skipped (\(error))"))
                }
                continue
            }
            guard case .object(var object) = parsed, let key = object["#key"]?.stringValue else {
                warnings.append(
                    ExcaWarning(file: name, line: lineNumber, message: "line is not an object with a string \"#key\""))
                continue
            }
            object["#key"] = nil
            let type: String
            if let declared = object["#type"]?.stringValue {
                type = declared
                object["#type"] = nil
            } else if let legacyType {
                type = ExcaCache.legacyType(declared: legacyType, fields: object)
            } else {
                warnings.append(
                    ExcaWarning(
                        file: name, line: lineNumber, message: "line has no \"#type\" and the file no metadata= header")
                )
                continue
            }
            let entry = ExcaLine(
                file: name, line: lineNumber, key: key, type: type, fields: object,
                legacy: legacyType != nil && object["#type"] == nil)
            if perKey[IndexKey(key)] == nil { order.append(IndexKey(key)) } else { overriddenLines += 1 }
            perKey[IndexKey(key)] = entry
        }
        layouts.insert(legacyType != nil ? "0.2-0.5.11" : "0.5.12+")
        for key in order { copies[key, default: []].append(perKey[key]!) }
        var shard = ExcaShard(infoFile: name, prefix: prefix, dataFiles: [], identities: [IndexKey(name): identity])
        for candidate in [
            "data/\(prefix).data", "data/\(prefix).data.jsonl", "data/\(prefix)-data.jsonl", "\(prefix).data",
            "\(prefix).txt",
        ] {
            do {
                shard.identities[IndexKey(candidate)] = try folder.file(candidate)
                shard.dataFiles.append(candidate)
            } catch let error where error.code == .notFound {
                continue
            } catch {
                shard.refused.append(error.message)
            }
        }
        shards.append(shard)
    }

    /// The type of a legacy line. The header's type, unless the line's fields show another (exca <= 0.5.11
    /// appended entries of another cache type to a file whose header was already written).
    static func legacyType(declared: String, fields: JSONObject) -> String {
        let has = { (name: String) in fields[name] != nil }
        let inferred: String?
        if has("optimized") || has("pickled") {
            inferred = "DataDict"
        } else if has("shape") && has("dtype") && has("offset") {
            inferred = "MemmapArrayFile"
        } else if has("offset") && has("length"), fields["filename"]?.stringValue?.hasSuffix(".txt") == true {
            inferred = "String"
        } else {
            inferred = nil
        }
        guard let inferred else { return declared }
        let fits: Bool
        switch declared {
        case "DataDict": fits = inferred == "DataDict"
        case "MemmapArrayFile", "MemmapArray": fits = inferred == "MemmapArrayFile"
        case "String": fits = inferred == "String"
        default: fits = false
        }
        return fits ? declared : inferred
    }

    /// exca 0.1: `.cache_type` names the one type; each `{uid}.key` holds a key, its payload is `{uid}{suffix}`.
    mutating func readFlat(names: [String]) throws(CasketError) {
        layouts.insert("0.1")
        let type: String
        do {
            type = String(decoding: try folder.open(".cache_type").readAll(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            warnings.append(
                ExcaWarning(file: ".cache_type", line: 0, message: "not read, no .key file read: \(error.message)"))
            return
        }
        let sorted = names.sorted { Array($0.utf8).lexicographicallyPrecedes($1.utf8) }
        let keyFiles = sorted.filter { $0.hasSuffix(".key") }
        let others = sorted.filter { !$0.hasSuffix(".key") && $0 != ".cache_type" && !$0.hasSuffix("-info.jsonl") }
        for keyFile in keyFiles {
            let data: [UInt8]
            do {
                data = try folder.open(keyFile).readAll()
            } catch {
                warnings.append(ExcaWarning(file: keyFile, line: 0, message: "unreadable .key file: \(error.message)"))
                continue
            }
            let key = String(decoding: data, as: UTF8.self)
            let uid = String(keyFile.dropLast(".key".count))
            let payloads = others.filter {
                $0.hasPrefix(uid) && ($0.dropFirst(uid.count).first.map { $0 == "." || $0 == "-" } ?? false)
            }
            var fields = JSONObject()
            if let payload = payloads.first {
                fields["filename"] = .string(payload)
            } else {
                fields["filename"] = .string(uid + ExcaCache.flatSuffix(type))
            }
            copies[IndexKey(key), default: []].append(
                ExcaLine(
                    file: keyFile, line: 1, key: key, type: type == "MneRaw" ? "MneRawFif" : type, fields: fields,
                    legacy: true))
        }
    }

    static func flatSuffix(_ type: String) -> String {
        switch type {
        case "NumpyArray", "NumpyMemmapArray": return ".npy"
        case "Pickle": return ".pkl"
        case "PandasDataFrame": return ".csv"
        case "ParquetPandasDataFrame": return ".parquet"
        case "TorchTensor": return ".pt"
        case "NibabelNifti": return ".nii.gz"
        case "MneRaw", "MneRawFif": return "-raw.fif"
        default: return ""
        }
    }
}
