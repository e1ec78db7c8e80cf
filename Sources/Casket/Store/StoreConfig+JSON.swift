import Foundation

extension StoreConfig {
    /// The file name of the configuration at the store root.
    static let fileName = "casket.json"

    /// The exact bytes written to `casket.json`.
    func encoded(created: Date = Date()) -> [UInt8] {
        let stamp = ISO8601DateFormatter().string(from: created)
        let text =
            "{\"format\":\"casket\",\"version\":\(version),\"hash\":\"xxh3-128\","
            + "\"compression\":\"\(compression.rawValue)\",\"durability\":\"\(durability.rawValue)\","
            + "\"inline_max\":\(inlineMax),"
            + (chunksMin == ChunkDigests.defaultMinimum ? "" : "\"chunks_min\":\(chunksMin),")
            + (version >= 2 ? "\"pack_max\":\(packMax),\"pack_size\":\(packSize)," : "")
            + "\"created\":\"\(stamp)\"}\n"
        return Array(text.utf8)
    }

    /// Parses `casket.json`, refusing anything that is not a store of a version this code knows.
    ///
    /// The one validation of docs/FORMAT.md section 2, the same as the Python client's (the shared table
    /// `Tools/python/conformance/configs.json` holds the cases both test suites check): each refusal names
    /// the file, the field and what is wrong with it.
    init(parsing bytes: [UInt8], root: String) throws(CasketError) {
        let path = root + "/" + StoreConfig.fileName
        func invalid(_ what: String) -> CasketError { CasketError(.invalidConfig, "'\(path)' \(what)", path: path) }
        let object: JSONObject
        do {
            guard let parsed = try JSONParser.parse(bytes).objectValue else { throw invalid("is not a JSON object") }
            object = parsed
        } catch let error as JSONParser.SyntaxError {
            throw invalid("is not valid JSON: \(error)")
        } catch {
            throw error as! CasketError
        }
        var seen = Set<String>()
        for field in object.fields where !seen.insert(field.key).inserted {
            throw invalid("has the field \"\(field.key)\" twice")
        }
        guard object["format"] == .string("casket") else {
            throw CasketError(
                .notAStore, "'\(root)' is not a Casket store: '\(path)' lacks \"format\":\"casket\"", path: root)
        }
        func field(_ name: String, _ value: JSONValue?, must rule: String) -> CasketError {
            invalid("has an invalid \"\(name)\": \(value.map { $0.encoded } ?? "missing"); it must be \(rule)")
        }
        let versionRule = "an integer from 1 to \(StoreConfig.currentVersion)"
        guard let versionValue = object["version"], let version = StoreConfig.integer(versionValue) else {
            throw field("version", object["version"], must: versionRule)
        }
        guard version >= 1 else { throw field("version", versionValue, must: versionRule) }
        guard version <= StoreConfig.currentVersion else {
            throw CasketError(
                .unsupportedVersion,
                "'\(path)' has \"version\": \(version): the store is of format version \(version), newer than "
                    + "this casket reads (up to \(StoreConfig.currentVersion)): upgrade casket",
                path: path
            )
        }
        if let hash = object["hash"], hash != .string("xxh3-128") {
            throw field("hash", hash, must: "\"xxh3-128\"")
        }
        func named<T: RawRepresentable & CaseIterable>(_ name: String, _: T.Type, default value: T) throws(CasketError)
            -> T where T.RawValue == String
        {
            guard let given = object[name] else { return value }
            guard let text = given.stringValue, let known = T(rawValue: text) else {
                let names = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
                throw field(name, given, must: names)
            }
            return known
        }
        let compression = try named("compression", Compression.self, default: .none)
        let durability = try named("durability", Durability.self, default: .fsync)
        var inlineMax = 0
        if let given = object["inline_max"] {
            guard let value = StoreConfig.integer(given), value >= 0, value <= Int64(StoreConfig.maximumInlineMax)
            else {
                throw field("inline_max", given, must: "an integer from 0 to \(StoreConfig.maximumInlineMax)")
            }
            inlineMax = Int(value)
        }
        var chunksMin = ChunkDigests.defaultMinimum
        if let given = object["chunks_min"] {
            guard let value = StoreConfig.integer(given), value >= 0 else {
                throw field("chunks_min", given, must: "a non-negative integer")
            }
            chunksMin = value
        }
        var packMax = 0
        if let given = object["pack_max"] {
            guard let value = StoreConfig.integer(given), value >= 0, value <= Int64(StoreConfig.maximumPackMax) else {
                throw field("pack_max", given, must: "an integer from 0 to \(StoreConfig.maximumPackMax)")
            }
            // A version 1 reader ignores the field and would never find a packed payload.
            guard value == 0 || version >= 2 else {
                throw field("pack_max", given, must: "0 in a store of version 1 (packs need \"version\": 2)")
            }
            packMax = Int(value)
        }
        var packSize = StoreConfig.defaultPackSize
        if let given = object["pack_size"] {
            let range = StoreConfig.packSizeRange
            guard let value = StoreConfig.integer(given), range.contains(value) else {
                throw field("pack_size", given, must: "an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            packSize = value
        }
        self.init(
            compression: compression, durability: durability, inlineMax: inlineMax, chunksMin: chunksMin,
            packMax: packMax, packSize: packSize)
        self.version = Int(version)
    }

    /// The value of a JSON number written as an integer (no fraction, no exponent) that fits in 64 bits;
    /// `nil` for anything else, Booleans included.
    static func integer(_ value: JSONValue) -> Int64? {
        guard case .number(let text) = value, text.utf8.allSatisfy({ $0 == 0x2D || ($0 >= 0x30 && $0 <= 0x39) })
        else { return nil }
        return Int64(text)
    }
}
