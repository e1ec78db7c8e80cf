extension BlobStore {
    /// What a blob's sidecar is worth.
    public enum SidecarState: Sendable, Equatable {
        /// The sidecar holds the digests of this blob.
        case usable(ChunkDigests)
        /// No file has the sidecar's name.
        case absent
        /// A file has the name but cannot be the blob's digests; `reason` says why.
        case unusable(path: String, reason: String)

        /// The digests, when usable.
        public var digests: ChunkDigests? {
            if case .usable(let digests) = self { return digests }
            return nil
        }
    }

    /// The sidecar's name in the blob's fan-out folder.
    func sidecarName(_ digest: Digest) -> String { digest.hex + ChunkDigests.suffix }

    /// The sidecar's path.
    public func sidecarPath(_ digest: Digest) -> String { layout.rawPath(digest) + ChunkDigests.suffix }

    /// A blob's chunk digests, checked against the blob (docs/FORMAT.md 3.6).
    ///
    /// The one place a sidecar is looked up, so that another container of blobs (packs) plugs in here.
    /// Read like a blob: relative to its fan-out folder, no link followed, regular files only, never more
    /// bytes than a sidecar of `size` can hold.
    public func sidecar(_ digest: Digest, size: Int64) -> SidecarState {
        let path = sidecarPath(digest)
        guard let fanout = try? directories.fanout(digest) else { return .absent }
        let name = sidecarName(digest)
        switch fanout.status(name) {
        case .failure(.noSuchFileOrDirectory): return .absent
        case .failure(let errno): return .unusable(path: path, reason: "it cannot be examined (\(errno))")
        case .success(let status) where !status.isRegularFile:
            return .unusable(path: path, reason: "it is \(status.kind), not a regular file")
        case .success(let status) where status.size > Int64(ChunkDigests.maximumLength(size: size)):
            return .unusable(path: path, reason: "it holds \(status.size) bytes, more than any sidecar of \(size)")
        case .success: break
        }
        let bytes: [UInt8]
        do {
            bytes = try fanout.readSmallFile(name, limit: ChunkDigests.maximumLength(size: size))
        } catch  where error.code == .notFound {
            return .absent
        } catch {
            return .unusable(path: path, reason: BlobStore.flaw(error, path: path))
        }
        switch ChunkDigests.parse(bytes, digest: digest, size: size) {
        case .success(let digests): return .usable(digests)
        case .failure(let flaw): return .unusable(path: path, reason: flaw.description)
        }
    }

    /// Publishes a blob's sidecar like a blob (a temp file, flushed, linked without replacing); an existing
    /// file with other bytes (damaged, of another blob, a link) is replaced. Identical files are left.
    public func publishSidecar(_ digests: ChunkDigests) throws(CasketError) {
        guard let fanout = try directories.fanout(digests.digest, create: true, durable: durable) else {
            throw CasketError(.notFound, "cannot create the fan-out folder of \(sidecarPath(digests.digest))")
        }
        let bytes = digests.encoded()
        var file = try AtomicFile(in: directories.folder(.tmp), mode: 0o444)
        let out = file.io
        try typed { try bytes.withUnsafeBytes { try out.writeAll($0) } }
        let name = sidecarName(digests.digest)
        if try file.publish(
            to: fanout, as: name, .exclusive(replaceIfUnsupported: true), durable: durable,
            capabilities: publishCapabilities) == .nameTaken
        {
            if sidecar(digests.digest, size: digests.size) == .usable(digests) { return }
            _ = try file.publish(to: fanout, as: name, .replace, durable: durable)
        }
    }

    /// Gives a stored blob its sidecar when it should have one and has none usable (a blob written before
    /// chunk digests, a damaged sidecar). `compute` is called only then.
    func ensureSidecar(
        _ digest: Digest, size: Int64, _ compute: () throws(CasketError) -> [UInt64]
    ) throws(CasketError) {
        guard ChunkDigests.wanted(size: size, minimum: config.chunksMin), sidecar(digest, size: size).digests == nil
        else { return }
        try publishSidecar(ChunkDigests(digest: digest, size: size, digests: try compute()))
    }

    /// The chunk digests of a byte range of a file, streamed.
    static func chunkDigests(_ io: FileRef, offset: Int64, length: Int64) throws(CasketError) -> [UInt64] {
        let digester = ChunkDigester()
        try forEachPiece(io, offset: offset, length: length) { (piece) throws(CasketError) in digester.update(piece) }
        return digester.finish()
    }
}
