import Synchronization

extension BlobStore {
    /// The state of a blob on disk.
    enum Inspection {
        /// Stored and sound (right size, plausible frame).
        case sound(BlobLocation)
        /// A file is there but cannot be the payload (wrong size, empty, not a frame): it is replaced.
        case unsound(path: String)
        /// Neither form exists.
        case absent
    }

    /// Looks for a blob in both forms, raw first, checking what can be checked without reading it all.
    func inspect(_ digest: Digest, size: Int64?) -> Inspection {
        var unsound: String? = nil
        guard let fanout = try? directories.fanout(digest) else { return .absent }
        let rawPath = layout.rawPath(digest)
        // lstat: a link under a blob's name is not a blob (it is unsound, and replaced by a writer).
        if case .success(let st) = fanout.status(blobName(digest, compressed: false)) {
            let emptyDebris = st.size == 0 && digest != .empty
            if st.isRegularFile && !emptyDebris && (size == nil || st.size == size) {
                return .sound(
                    BlobLocation(
                        digest: digest, path: rawPath, compressed: false, storedBytes: st.size, size: st.size,
                        mtimeNanoseconds: st.mtimeNanoseconds))
            }
            unsound = rawPath
        }
        let compressedPath = layout.compressedPath(digest)
        if case .success(let st) = fanout.status(blobName(digest, compressed: true)) {
            if st.isRegularFile, let header = try? readFrameHeader(digest, in: fanout),
                size == nil || header.contentSize == nil || header.contentSize == size
            {
                return .sound(
                    BlobLocation(
                        digest: digest, path: compressedPath, compressed: true, storedBytes: st.size,
                        size: header.contentSize, mtimeNanoseconds: st.mtimeNanoseconds))
            }
            unsound = unsound ?? compressedPath
        }
        if let unsound { return .unsound(path: unsound) }
        return .absent
    }

    /// A blob's file name in its fan-out folder: the hash, plus `.lz4` for the compressed form.
    func blobName(_ digest: Digest, compressed: Bool) -> String {
        compressed ? digest.hex + StoreLayout.compressedSuffix : digest.hex
    }

    func readFrameHeader(_ digest: Digest, in fanout: Directory) throws(CasketError) -> LZ4FrameHeader? {
        let handle = try fanout.openForReading(blobName(digest, compressed: true))
        var bytes = [UInt8](repeating: 0, count: 19)
        let io = handle.io
        let n = try typed { try bytes.withUnsafeMutableBytes { try io.readFully(into: $0) } }
        return bytes.withUnsafeBytes { LZ4FrameHeader(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
    }

    /// Publishes a staged blob under its hash without ever exposing a partial file (docs/FORMAT.md 3.3).
    ///
    /// - Parameter lookFirst: Look for the blob (in either form) before publishing. Callers that looked
    ///   just before staging pass false: the no-replace publish still detects a racing writer of the same
    ///   form, and every writer of a payload picks the same form.
    func publish(_ staged: consuming StagedBlob, lookFirst: Bool = true) throws(CasketError) -> PutResult {
        let digest = staged.digest
        let newResult = PutResult(
            digest: digest, size: staged.size, deduplicated: false, compressed: staged.compressed,
            storedBytes: staged.storedBytes)
        // A racing writer (possibly of the other form) may have finished while this one was writing.
        if lookFirst, let hit = deduplicate(digest, size: staged.size) { return hit }
        let finalName = blobName(digest, compressed: staged.compressed)
        guard let fanout = try directories.fanout(digest, create: true, durable: durable) else {
            let path = layout.path(digest, compressed: staged.compressed)
            throw CasketError(.notFound, "cannot create the fan-out folder of \(path)", path: path)
        }
        let published = try staged.temp.publish(
            to: fanout, as: finalName, .exclusive(replaceIfUnsupported: true), durable: durable,
            capabilities: publishCapabilities)
        if published == .nameTaken {
            if case .sound(let location) = inspect(digest, size: staged.size),
                freshen(digest, compressed: location.compressed)
            {
                if location.compressed { removeUnsoundRaw(digest, size: staged.size) }
                return PutResult(
                    digest: digest, size: staged.size, deduplicated: true, compressed: location.compressed,
                    storedBytes: location.storedBytes)
            }
            // Unsound, or not ours to freshen: replace it with bytes known to be right.
            _ = try staged.temp.publish(to: fanout, as: finalName, .replace, durable: durable)
        }
        if staged.compressed { removeUnsoundRaw(digest, size: staged.size) }
        return newResult
    }

}
