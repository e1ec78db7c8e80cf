extension PackShelf {
    /// What `packs/` holds, counted without reading payloads (`casket stat`).
    public struct Census: Sendable, Equatable {
        /// Pack files.
        public var packs = 0
        /// Those with an index.
        public var sealedPacks = 0
        /// Records: the entries of sealed packs' indexes, the complete records of open packs.
        public var records = 0
        /// Distinct payloads among them (a payload packed twice, by two writers at once, counts once).
        public var payloads = 0
        /// The uncompressed bytes of those distinct payloads.
        public var payloadBytes: Int64 = 0
        /// Bytes of pack and index files on disk.
        public var fileBytes: Int64 = 0

        /// An empty census: a store without `packs/`.
        public init() {}
    }

    /// Counts the packs and their payloads: a sealed pack through its index (no payload is read), an open
    /// one by walking its record headers. A pack removed since the listing is skipped; a damaged index is
    /// passed over for the pack's own headers (fsck reports it).
    public func census() throws(CasketError) -> Census {
        var census = Census()
        var seen = Set<Digest>()
        func count(_ record: PackRecord) {
            census.records += 1
            if seen.insert(record.digest).inserted {
                census.payloads += 1
                census.payloadBytes += record.size
            }
        }
        for (id, sealed) in try packIDs() {
            guard let pack = try PackShelf.openRegular(folder, id + PackShelf.packSuffix) else { continue }
            census.packs += 1
            let length = try pack.io.status().size
            census.fileBytes += length
            if sealed, let file = try PackShelf.openRegular(folder, id + PackShelf.indexSuffix) {
                let indexLength = try file.io.status().size
                census.fileBytes += indexLength
                do throws(CasketError) {
                    let index = try PackIndex(file.io, length: indexLength)
                    census.sealedPacks += 1
                    for i in 0..<index.count { count(index.entry(i)) }
                    continue
                } catch  where error.code == .corrupt {}
            }
            try PackScan.records(pack.io, length: length, verify: false) { (record, _) throws(CasketError) in
                count(record)
            }
        }
        return census
    }
}
