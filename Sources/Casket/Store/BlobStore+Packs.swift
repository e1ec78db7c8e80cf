import Synchronization

extension BlobStore {
    /// The store's packs as this process knows them (docs/FORMAT.md 3.7-3.8), shared by every reader of
    /// this `BlobStore`, so a listing and the mapped indexes are read once per process, not per lookup.
    /// A store without `packs/` gets the folder.
    public func packShelf() throws(CasketError) -> PackShelf {
        if let known = shelf.withLock({ $0 }) { return known }
        let made = PackShelf(folder: try directories.folder(.packs, create: true))
        return shelf.withLock { cache in
            if let raced = cache { return raced }
            cache = made
            return made
        }
    }

    /// A new writer of packs, its packs named `<writerID>-<n>`.
    ///
    /// - Parameters:
    ///   - writerID: The writer id (FORMAT 5.1), by default a new one.
    ///   - targetSize: The size after which a pack is sealed.
    public func packWriter(writerID: String? = nil, targetSize: Int64 = 16 << 20) throws(CasketError) -> PackWriter {
        PackWriter(
            folder: try directories.folder(.packs, create: true),
            writerID: writerID ?? "\(HostIdentity.host)-\(HostIdentity.pid)-\(HostIdentity.randomHex(bytes: 4))",
            targetSize: targetSize, compress: config.compression == .lz4, durable: durable)
    }
}
