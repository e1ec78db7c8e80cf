extension BlobStore {
    /// One file found under `blobs/`.
    public struct BlobFile: Sendable {
        /// The blob's identity, from its name.
        public var digest: Digest
        /// The file's path.
        public var path: String
        /// True for the LZ4-frame form.
        public var compressed: Bool
        /// The file size on disk.
        public var storedBytes: Int64
        /// Modification time, nanoseconds since the epoch.
        public var mtimeNanoseconds: Int64

        /// Describes a blob file.
        public init(digest: Digest, path: String, compressed: Bool, storedBytes: Int64, mtimeNanoseconds: Int64) {
            self.digest = digest
            self.path = path
            self.compressed = compressed
            self.storedBytes = storedBytes
            self.mtimeNanoseconds = mtimeNanoseconds
        }

        /// Describes the file at `path` if its name is a blob's (`<hash>` or `<hash>.lz4`) and it is a
        /// regular file; `nil` otherwise.
        public init?(path: String, size: Int64, mtimeNanoseconds: Int64) {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            let compressed = name.hasSuffix(StoreLayout.compressedSuffix)
            guard let digest = Digest(compressed ? String(name.dropLast(StoreLayout.compressedSuffix.count)) : name)
            else { return nil }
            self.init(
                digest: digest, path: path, compressed: compressed, storedBytes: size,
                mtimeNanoseconds: mtimeNanoseconds)
        }
    }

    /// Walks every blob file, one fan-out folder at a time, without listing the whole tree into memory.
    ///
    /// - Parameters:
    ///   - body: Called for each blob file.
    ///   - debris: Called for each other file under `blobs/` (a name that is not a blob's).
    ///   - sidecar: Called for each regular file named as a blob's chunk digests, `<hash>.chunks`
    ///     (docs/FORMAT.md 3.6), with the blob and the path; such files are not debris.
    public func forEachBlob(
        _ body: (BlobFile) throws(CasketError) -> Void,
        debris: (String) throws(CasketError) -> Void = { (_) throws(CasketError) in },
        sidecar: (Digest, String) throws(CasketError) -> Void = { (_, _) throws(CasketError) in }
    ) throws(CasketError) {
        let blobs = try directories.folder(.blobs)
        var fanouts: [String] = []
        try blobs.forEachEntry { (name, _) throws(CasketError) in fanouts.append(name) }
        for fanout in fanouts.sorted() {
            let directory = blobs.path(of: fanout)
            // A link or file in the place of a fan-out folder is debris, never followed.
            guard fanout.utf8.count == 2, case .success(let st) = blobs.status(fanout), st.isDirectory else {
                try debris(directory)
                continue
            }
            let folder = try blobs.directory(fanout)
            try folder.forEachEntry { (name, _) throws(CasketError) in
                let path = directory + "/" + name
                if name.hasSuffix(ChunkDigests.suffix),
                    let digest = Digest(String(name.dropLast(ChunkDigests.suffix.count))),
                    name.hasPrefix(fanout), case .success(let st) = folder.status(name), st.isRegularFile
                {
                    return try sidecar(digest, path)
                }
                let compressed = name.hasSuffix(StoreLayout.compressedSuffix)
                let hex = compressed ? String(name.dropLast(StoreLayout.compressedSuffix.count)) : name
                guard let digest = Digest(hex), hex.hasPrefix(fanout), case .success(let st) = folder.status(name),
                    st.isRegularFile
                else {
                    try debris(path)
                    return
                }
                try body(
                    BlobFile(
                        digest: digest, path: path, compressed: compressed, storedBytes: st.size,
                        mtimeNanoseconds: st.mtimeNanoseconds))
            }
        }
    }

    /// Counts of what is stored.
    public struct Statistics: Sendable, Equatable {
        /// Distinct blobs (a blob kept in both forms counts once).
        public var blobs = 0
        /// Bytes of all blob files on disk.
        public var blobBytes: Int64 = 0
        /// Blobs kept as LZ4 frames.
        public var compressedBlobs = 0
        /// Bytes of those frames on disk.
        public var compressedBytes: Int64 = 0
        /// Payload bytes of all blobs, uncompressed (frames without a recorded size count their stored size).
        public var payloadBytes: Int64 = 0
        /// Files under `blobs/` that are not blobs, and temp files in `tmp/`.
        public var debrisFiles = 0
    }

    /// Walks the store and counts its blobs and bytes.
    public func statistics() throws(CasketError) -> Statistics {
        var stats = Statistics()
        try forEachBlob(
            { (file) throws(CasketError) in
                stats.blobBytes += file.storedBytes
                if file.compressed {
                    stats.compressedBlobs += 1
                    stats.compressedBytes += file.storedBytes
                    // A blob kept in both forms (a race between writers) counts once, as its raw form.
                    if mappablePath(file.digest) == nil {
                        stats.blobs += 1
                        let header = try directories.fanout(file.digest).flatMap {
                            try? readFrameHeader(file.digest, in: $0)
                        }
                        stats.payloadBytes += header?.contentSize ?? file.storedBytes
                    }
                } else {
                    stats.blobs += 1
                    stats.payloadBytes += file.storedBytes
                }
            }, debris: { (_) throws(CasketError) in stats.debrisFiles += 1 })
        try directories.folder(.tmp).forEachEntry { (_, _) throws(CasketError) in stats.debrisFiles += 1 }
        return stats
    }

    /// Removes a blob in both forms (for garbage collection). Returns the number of files removed.
    @discardableResult
    public func remove(_ digest: Digest) throws(CasketError) -> Int {
        guard let fanout = try directories.fanout(digest) else { return 0 }
        var removed = 0
        for compressed in [false, true] {
            switch fanout.remove(blobName(digest, compressed: compressed)) {
            case .success: removed += 1
            case .failure(.noSuchFileOrDirectory): break
            case .failure(let errno):
                throw CasketError.remove(layout.path(digest, compressed: compressed), errno: errno)
            }
        }
        if removed > 0 && durable { try fanout.sync() }
        return removed
    }
}
