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
            + "\"inline_max\":\(inlineMax),\"created\":\"\(stamp)\"}\n"
        return Array(text.utf8)
    }

    /// Parses `casket.json`, refusing anything that is not a store of a version this code knows.
    init(parsing bytes: [UInt8], root: String) throws(CasketError) {
        let path = root + "/" + StoreConfig.fileName
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw CasketError(.invalidConfig, "'\(path)' is not a JSON object", path: path)
            }
            object = parsed
        } catch let error as CasketError {
            throw error
        } catch {
            throw CasketError(.invalidConfig, "'\(path)' is not valid JSON: \(error.localizedDescription)", path: path)
        }
        guard object["format"] as? String == "casket" else {
            throw CasketError(
                .notAStore, "'\(root)' is not a Casket store: '\(path)' lacks \"format\":\"casket\"", path: root)
        }
        guard let version = object["version"] as? Int else {
            throw CasketError(.invalidConfig, "'\(path)' has no integer \"version\"", path: path)
        }
        guard version <= StoreConfig.currentVersion, version >= 1 else {
            throw CasketError(
                .unsupportedVersion,
                "'\(root)' is a Casket store of format version \(version); this casket reads versions up to "
                    + "\(StoreConfig.currentVersion): upgrade casket",
                path: path
            )
        }
        guard (object["hash"] as? String ?? "xxh3-128") == "xxh3-128" else {
            throw CasketError(.invalidConfig, "'\(path)' names an unknown hash \(object["hash"] ?? "")", path: path)
        }
        let compressionName = object["compression"] as? String ?? "none"
        guard let compression = Compression(rawValue: compressionName) else {
            throw CasketError(.invalidConfig, "'\(path)' names an unknown compression '\(compressionName)'", path: path)
        }
        let durabilityName = object["durability"] as? String ?? "fsync"
        guard let durability = Durability(rawValue: durabilityName) else {
            throw CasketError(.invalidConfig, "'\(path)' names an unknown durability '\(durabilityName)'", path: path)
        }
        self.init(compression: compression, durability: durability, inlineMax: object["inline_max"] as? Int ?? 0)
        self.version = version
    }
}
