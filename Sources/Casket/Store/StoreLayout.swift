/// Where things live under a store root (docs/FORMAT.md, section 1).
struct StoreLayout: Sendable {
    let root: String

    var config: String { root + "/" + StoreConfig.fileName }
    var blobs: String { root + "/blobs" }
    var tmp: String { root + "/tmp" }
    var index: String { root + "/index" }
    var gc: String { root + "/gc" }
    var quarantine: String { root + "/quarantine" }
    var claims: String { root + "/claims" }
    var packs: String { root + "/packs" }

    static let compressedSuffix = ".lz4"

    func fanout(_ digest: Digest) -> String {
        let hex = digest.hex
        return blobs + "/" + hex.prefix(2)
    }

    func rawPath(_ digest: Digest) -> String {
        let hex = digest.hex
        return blobs + "/" + hex.prefix(2) + "/" + hex
    }

    func compressedPath(_ digest: Digest) -> String { rawPath(digest) + StoreLayout.compressedSuffix }

    func path(_ digest: Digest, compressed: Bool) -> String {
        compressed ? compressedPath(digest) : rawPath(digest)
    }
}
