extension BlobStore {
    /// Bytes read per step when hashing or copying through user space: small enough to stay in L2, so
    /// that the hash reads what `read` just wrote there.
    static let readChunk = 256 << 10

    /// Stores exactly `length` bytes of a file starting at `offset`, streamed. Offsets need no alignment.
    ///
    /// - Parameters:
    ///   - path: A regular file.
    ///   - offset: The first byte of the range.
    ///   - length: The number of bytes.
    ///   - hashFirst: Hash the range before writing, so that a blob already stored costs one read and no
    ///     write (the default). Pass false when the blob is most likely new (a migration): the range is then
    ///     read once, hashed while it is copied, and the lookup happens before publishing.
    /// - Throws: ``CasketError/Code/invalidArgument`` when the range is negative or goes beyond the end of the
    ///   file, ``CasketError/Code/changedWhileReading`` when the bytes changed between two passes, and the
    ///   errors of ``put(fileAt:)``.
    public func put(
        fileAt path: String, offset: Int64, length: Int64, hashFirst: Bool = true
    ) throws(CasketError) -> PutResult {
        let handle = try FileHandle.openForReading(path)
        _ = try BlobStore.checkRange(handle.io, offset: offset, length: length)
        return try putRange(handle.io, offset: offset, length: length, hashFirst: hashFirst)
    }

    /// The XXH3-128 digest of a byte range of a file, streamed (nothing is stored).
    ///
    /// - Throws: ``CasketError/Code/invalidArgument`` when the range goes beyond the end of the file.
    public static func digest(ofFileAt path: String, offset: Int64 = 0, length: Int64? = nil) throws(CasketError)
        -> Digest
    {
        let handle = try FileHandle.openForReading(path)
        let size = try checkRange(handle.io, offset: offset, length: length ?? 0)
        return try hashRange(handle.io, offset: offset, length: length ?? (size - offset), chunks: nil)
    }

    /// Checks that `io` is a regular file holding the range; returns its size.
    static func checkRange(_ io: FileRef, offset: Int64, length: Int64) throws(CasketError) -> Int64 {
        let st = try io.stat()
        guard st.isRegularFile else {
            let what = st.isDirectory ? "a directory" : "not a regular file"
            throw CasketError(.notARegularFile, "cannot store '\(io.path)': it is \(what)", path: io.path)
        }
        guard offset >= 0, length >= 0, offset <= st.size, length <= st.size - offset else {
            throw CasketError(
                .invalidArgument,
                "range [\(offset), \(offset) + \(length)) is beyond the end of '\(io.path)' (\(st.size) bytes)",
                path: io.path)
        }
        return st.size
    }

    /// Calls `body` with consecutive pieces of a range; a short read means the file shrank.
    static func forEachPiece(
        _ io: FileRef, offset: Int64, length: Int64, _ body: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Int(min(Int64(readChunk), max(length, 1))), alignment: 64)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(buffer.count), length - done))
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[..<want])
            let n = try io.pread(into: piece, at: offset + done)
            guard n == want else {
                throw CasketError(
                    .changedWhileReading, "'\(io.path)' shrank while bytes \(offset)+\(length) were being read",
                    path: io.path)
            }
            try body(UnsafeRawBufferPointer(piece))
            done += Int64(n)
        }
    }

    /// Hashes a range, feeding `chunks` the same pieces (one pass for the name and the chunk digests).
    static func hashRange(
        _ io: FileRef, offset: Int64, length: Int64, chunks: ChunkDigester?
    ) throws(CasketError) -> Digest {
        var hasher = StreamingHasher()
        if length >= readAheadMinimum {
            // The next piece is read on another thread while this one is hashed.
            let ahead = ReadAhead(io, chunk: 1 << 20, range: (offset, length))
            defer { ahead.finish() }
            while let piece = try ahead.next() {
                hasher.update(piece)
                chunks?.update(piece)
            }
            return hasher.finalize()
        }
        try forEachPiece(io, offset: offset, length: length) { (piece) throws(CasketError) in
            hasher.update(piece)
            chunks?.update(piece)
        }
        return hasher.finalize()
    }

    /// Hashes a temp file this process wrote, through a read-only mapping: no copy into user space. Only for
    /// files nobody else can truncate (a mapping of a file truncated under it faults), so never for inputs.
    static func hashOwnFile(_ io: FileRef, length: Int64, chunks: ChunkDigester?) throws(CasketError) -> Digest {
        guard length > 0, case .success(let base) = system_mmapReadOnly(io.fd, Int(length)) else {
            return try hashRange(io, offset: 0, length: length, chunks: chunks)
        }
        defer { system_munmap(base, Int(length)) }
        let all = UnsafeRawBufferPointer(start: base, count: Int(length))
        guard let chunks else { return Digest(hashing: all) }
        var hasher = StreamingHasher()
        var offset = 0
        while offset < all.count {
            let piece = UnsafeRawBufferPointer(rebasing: all[offset..<min(offset + chunks.chunkSize, all.count)])
            hasher.update(piece)
            chunks.update(piece)
            offset += piece.count
        }
        return hasher.finalize()
    }

    /// The one implementation behind every file and range put.
    ///
    /// With `hashFirst`, the range is hashed to look the blob up before anything is written, so a payload
    /// already stored costs one read. (Copying speculatively on another thread while hashing made new
    /// payloads about 15 % faster but dedup hits a third slower, and hits are 15 of the 16 puts in the
    /// workload this store exists for: docs/PERFORMANCE.md.)
    func putRange(_ io: FileRef, offset: Int64, length: Int64, hashFirst: Bool) throws(CasketError) -> PutResult {
        io.adviseSequential()
        guard hashFirst else {
            return try publish(try stageCopy(io, offset: offset, length: length), lookFirst: true)
        }
        // No chunk digests in this pass: a dedup hit (most puts here) needs none when the blob has its
        // sidecar, and a new blob gets them in the pass that hashes its copy.
        let digest = try BlobStore.hashRange(io, offset: offset, length: length, chunks: nil)
        if let hit = deduplicate(digest, size: length) {
            try ensureSidecar(digest, size: length) { () throws(CasketError) in
                // A blob stored before chunk digests: read back, verified, from the store.
                let digester = ChunkDigester()
                try read(digest, size: length) { (piece) throws(CasketError) in digester.update(piece) }
                return digester.finish()
            }
            return hit
        }
        return try publish(try stageCopy(io, offset: offset, length: length, expected: digest), lookFirst: false)
    }

    static func expectUnchanged(
        _ io: FileRef, offset: Int64, length: Int64, expected: Digest?, actual: Digest
    ) throws(CasketError) {
        guard let expected, expected != actual else { return }
        throw CasketError(
            .changedWhileReading,
            "'\(io.path)' changed while bytes \(offset)+\(length) were being stored (hash \(expected) then "
                + "\(actual)); nothing was stored",
            path: io.path)
    }

    /// Writes a range to a temp file and hashes what was written: by `copy_file_range` into a raw store
    /// (no copy through user space; a reflink where the file system can), else through user space with
    /// compression as configured. Checks the result against `expected` when given.
    func stageCopy(
        _ io: FileRef, offset: Int64, length: Int64, expected: Digest? = nil
    ) throws(CasketError) -> StagedBlob {
        if config.compression == .none, length > 0 {
            let temp = try AtomicFile(in: directories.folder(.tmp), mode: 0o444)
            let out = temp.io
            if try BlobStore.kernelCopy(io, offset: offset, length: length, into: out) {
                let chunks = ChunkDigests.wanted(size: length, minimum: config.chunksMin) ? ChunkDigester() : nil
                let digest = try BlobStore.hashOwnFile(out, length: length, chunks: chunks)
                try BlobStore.expectUnchanged(io, offset: offset, length: length, expected: expected, actual: digest)
                return StagedBlob(
                    temp: temp, digest: digest, size: length, compressed: false, storedBytes: length,
                    chunks: chunks?.finish())
            }
        }
        let staged = try stage(knownSize: length) { (feed) throws(CasketError) in
            try BlobStore.forEachPiece(io, offset: offset, length: length, feed)
        }
        try BlobStore.expectUnchanged(io, offset: offset, length: length, expected: expected, actual: staged.digest)
        return staged
    }

    /// Copies a range to `out` with `copy_file_range`. Returns false, having copied nothing, when the
    /// kernel cannot copy between these two files.
    static func kernelCopy(_ io: FileRef, offset: Int64, length: Int64, into out: FileRef) throws(CasketError) -> Bool {
        var position = offset
        var copied: Int64 = 0
        while copied < length {
            switch system_copyFileRange(io.fd, &position, out.fd, Int(min(length - copied, 1 << 30))) {
            case .success(0):
                throw CasketError(
                    .changedWhileReading, "'\(io.path)' shrank while bytes \(offset)+\(length) were being stored",
                    path: io.path)
            case .success(let n):
                copied += Int64(n)
            case .failure(let errno)
            where copied == 0
                && (errno == .crossDevice || errno == .invalidArgument || errno == .notImplemented
                    || errno == .notSupported || errno == .notPermitted):
                return false
            case .failure(let errno):
                throw CasketError.write(out.path, errno: errno)
            }
        }
        return true
    }
}
