public import Casket

/// Store fixtures.
public enum TestStore {
    /// Creates a store in `directory/name` and returns it.
    public static func create(
        in directory: String, name: String = "store", compression: StoreConfig.Compression = .none,
        durability: StoreConfig.Durability = .none, packMax: Int = 0, packSize: Int64 = StoreConfig.defaultPackSize
    ) throws -> BlobStore {
        try BlobStore.create(
            at: directory + "/" + name,
            config: StoreConfig(compression: compression, durability: durability, packMax: packMax, packSize: packSize))
    }

    /// Rewrites a store's `casket.json` by hand (as another writer configured differently would have it)
    /// and reopens it.
    public static func reconfigure(
        _ root: String, compression: StoreConfig.Compression, durability: StoreConfig.Durability = .none
    ) throws -> BlobStore {
        let text =
            "{\"format\":\"casket\",\"version\":1,\"hash\":\"xxh3-128\",\"compression\":\"\(compression.rawValue)\","
            + "\"durability\":\"\(durability.rawValue)\",\"inline_max\":0}\n"
        try TestFiles.write(root + "/casket.json", Array(text.utf8))
        return try BlobStore.open(at: root)
    }

    /// The payloads held in the store's packs (docs/FORMAT.md 3.7), each record's bytes verified: a damaged
    /// record fails the test, as a corrupt blob file does in ``problems(_:)``.
    public static func packedDigests(_ store: BlobStore) throws -> Set<Digest> {
        var found = Set<Digest>()
        guard let shelf = try store.packShelf() else { return found }
        for (id, _) in try shelf.packIDs() {
            for (record, flaw) in try shelf.verify(id).records {
                if let flaw { throw CasketError(.corrupt, "pack \(id): record \(record.digest): \(flaw)") }
                found.insert(record.digest)
            }
        }
        return found
    }

    /// The raw-form path of a blob.
    public static func rawPath(_ root: String, _ digest: Digest) -> String {
        root + "/blobs/" + digest.hex.prefix(2) + "/" + digest.hex
    }

    /// The compressed-form path of a blob.
    public static func compressedPath(_ root: String, _ digest: Digest) -> String {
        rawPath(root, digest) + ".lz4"
    }

    /// Every regular file under `blobs/`, relative to it.
    public static func blobFiles(_ root: String) -> [String] {
        TestFiles.regularFiles(under: root + "/blobs").filter { !$0.hasSuffix(ChunkDigests.suffix) }
    }

    /// The chunk digest sidecars under `blobs/` (docs/FORMAT.md 3.6).
    public static func sidecarFiles(_ root: String) -> [String] {
        TestFiles.regularFiles(under: root + "/blobs").filter { $0.hasSuffix(ChunkDigests.suffix) }
    }

    /// The names left in `tmp/`.
    public static func tempFiles(_ root: String) -> [String] {
        TestFiles.names(in: root + "/tmp")
    }

    /// Whether a name follows the temp-file pattern `<host>.<pid>.<16 hex>.tmp` (docs/FORMAT.md, section 4).
    public static func isTempFileName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[3] == "tmp", !parts[0].isEmpty else { return false }
        let hostOK = parts[0].utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D
        }
        let pidOK = !parts[1].isEmpty && parts[1].utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        let randomOK =
            parts[2].utf8.count == 16
            && parts[2].utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        return hostOK && pidOK && randomOK
    }

    /// Verifies every blob file under `blobs/` by reading it back through the store; returns the problems.
    public static func problems(_ store: BlobStore) -> [String] {
        var found: [String] = []
        do {
            try store.forEachBlob(
                { (file) throws(CasketError) in
                    do throws(CasketError) {
                        if file.compressed && store.mappablePath(file.digest) != nil {
                            // Both forms exist: readers use the raw one; the frame must still be sound on its own.
                            return
                        }
                        try store.verify(file.digest)
                    } catch {
                        found.append("\(file.path): \(error)")
                    }
                }, debris: { (path) throws(CasketError) in found.append("debris under blobs/: \(path)") })
        } catch {
            found.append("walk failed: \(error)")
        }
        return found
    }
}
