import Synchronization

extension BlobStore {
    /// The store's packs as this process knows them (docs/FORMAT.md 3.7-3.8), shared by every reader of
    /// this `BlobStore`, so a listing and the mapped indexes are read once per process, not per lookup.
    /// `nil` when the store has no `packs/` folder (a reader never creates one).
    public func packShelf() throws(CasketError) -> PackShelf? {
        if let known = shelf.withLock({ $0 }) { return known }
        let folder: Directory
        do {
            folder = try directories.folder(.packs)
        } catch let error where error.code == .notFound {
            return nil
        }
        OpenFileLimit.raise()
        let made = PackShelf(folder: folder)
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
    ///   - targetSize: The size after which a pack is sealed (default: the store's `pack_size`).
    ///   - durable: Whether seals flush (default: the store's durability); GC's repacking always flushes.
    ///   - buffered: Whether records are written in runs, for a writer that syncs before its lines name them.
    ///   - leaseTTL: The TTL of its packs' leases (default ``PackWriter/leaseTTL``; tests shorten it).
    public func packWriter(
        writerID: String? = nil, targetSize: Int64? = nil, durable: Bool? = nil, buffered: Bool = false,
        leaseTTL: Duration = PackWriter.leaseTTL
    ) throws(CasketError) -> PackWriter {
        PackWriter(
            folder: try directories.folder(.packs, create: true),
            writerID: writerID ?? "\(HostIdentity.host)-\(HostIdentity.pid)-\(HostIdentity.randomHex(bytes: 4))",
            targetSize: targetSize ?? config.packSize, compress: config.compression == .lz4,
            durable: durable ?? self.durable, buffered: buffered, leaseTTL: leaseTTL)
    }

    /// Whether a sound blob file holds the payload (docs/FORMAT.md 3.4); with `freshen`, its mtime is set to
    /// now as a writer's dedup does, and a failed freshen is a no. GC relies on such a file instead of a
    /// pack record only after freshening it, so no later GC sweeps it within a grace.
    @_spi(Maintenance) public func looseHolds(_ digest: Digest, size: Int64, freshen: Bool) -> Bool {
        if freshen { return deduplicate(digest, size: size) != nil }
        return [false, true].contains { judge(digest, compressed: $0, size: size).location != nil }
    }

    /// Whether a payload of `size` bytes goes to a pack in this store (docs/FORMAT.md 3.7).
    public func packs(size: Int64) -> Bool { config.packs && size < Int64(config.packMax) }

    /// The verified payload of a packed blob, `nil` when no pack holds it (or holds it with another size).
    func packedPayload(_ digest: Digest, size: Int64?) throws(CasketError) -> [UInt8]? {
        guard let shelf = try packShelf(), let found = try shelf.find(digest),
            size == nil || found.record.size == size
        else { return nil }
        return try shelf.read(digest)
    }

    /// Whether a pack holds the blob (with `size` bytes when given).
    func packsHold(_ digest: Digest, size: Int64?) -> Bool {
        guard let shelf = try? packShelf(), let found = try? shelf.find(digest) else { return false }
        return size == nil || found.record.size == size
    }

    /// Stores a small payload: found in `writer`'s open pack, as a sound loose blob (freshened), or in a
    /// pack, it is not written again; otherwise it is appended to `writer`'s open pack (not flushed: the
    /// caller flushes the writer before the line that references it).
    public func put(_ bytes: UnsafeRawBufferPointer, packingInto writer: PackWriter) throws(CasketError) -> PutResult {
        let digest = Digest(hashing: bytes)
        let size = Int64(bytes.count)
        if let own = writer.record(of: digest) {
            return PutResult(
                digest: digest, size: size, deduplicated: true, compressed: own.record.form == .lz4,
                storedBytes: own.record.stored)
        }
        if !directories.fanoutLooksEmpty(digest), let hit = deduplicate(digest, size: size) { return hit }
        if let shelf = try packShelf(), let found = try shelf.probe(digest), found.record.size == size {
            return PutResult(
                digest: digest, size: size, deduplicated: true, compressed: found.record.form == .lz4,
                storedBytes: found.record.stored)
        }
        let (_, record) = try writer.append(bytes, digest: digest)
        return PutResult(
            digest: digest, size: size, deduplicated: false, compressed: record.form == .lz4,
            storedBytes: record.stored)
    }
}
