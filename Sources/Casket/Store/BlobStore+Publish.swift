import Synchronization

extension BlobStore {
    /// A blob's file name in its fan-out folder: the hash, plus `.lz4` for the compressed form.
    func blobName(_ digest: Digest, compressed: Bool) -> String {
        compressed ? digest.hex + StoreLayout.compressedSuffix : digest.hex
    }

    /// The size a frame's header declares, `nil` when it declares none or is not a frame header.
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
        let chunks = staged.chunks
        let newResult = PutResult(
            digest: digest, size: staged.size, deduplicated: false, compressed: staged.compressed,
            storedBytes: staged.storedBytes)
        let result = try publishBlob(staged, lookFirst: lookFirst, newResult: newResult)
        // The sidecar follows its blob: a reader that finds the blob without it verifies the blob whole.
        if let chunks {
            if result.deduplicated {
                try ensureSidecar(digest, size: result.size) { () throws(CasketError) in chunks }
            } else {
                try publishSidecar(ChunkDigests(digest: digest, size: result.size, digests: chunks))
            }
        }
        return result
    }

    private func publishBlob(
        _ staged: consuming StagedBlob, lookFirst: Bool, newResult: PutResult
    ) throws(CasketError) -> PutResult {
        let digest = staged.digest
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
            if let hit = deduplicate(digest, size: staged.size) { return hit }
            // Unsound, or not ours to freshen: replace it with bytes known to be right.
            _ = try staged.temp.publish(to: fanout, as: finalName, .replace, durable: durable)
        }
        removeUnsoundTwin(digest, of: staged.compressed, size: staged.size)
        return newResult
    }

}
