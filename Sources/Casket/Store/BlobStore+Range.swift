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
        return try hashRange(handle.io, offset: offset, length: length ?? (size - offset))
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

    static func hashRange(_ io: FileRef, offset: Int64, length: Int64) throws(CasketError) -> Digest {
        var hasher = StreamingHasher()
        try forEachPiece(io, offset: offset, length: length) { (piece) throws(CasketError) in hasher.update(piece) }
        return hasher.finalize()
    }

    /// The one implementation behind every file and range put.
    func putRange(_ io: FileRef, offset: Int64, length: Int64, hashFirst: Bool) throws(CasketError) -> PutResult {
        io.adviseSequential()
        var expected: Digest? = nil
        if hashFirst {
            let digest = try BlobStore.hashRange(io, offset: offset, length: length)
            if let hit = deduplicate(digest, size: length) { return hit }
            expected = digest
        }
        let staged: StagedBlob
        if let copied = try stageByKernelCopy(io, offset: offset, length: length) {
            staged = copied
        } else {
            staged = try stage(knownSize: length) { (feed) throws(CasketError) in
                try BlobStore.forEachPiece(io, offset: offset, length: length, feed)
            }
        }
        if let expected, staged.digest != expected {
            throw CasketError(
                .changedWhileReading,
                "'\(io.path)' changed while bytes \(offset)+\(length) were being stored (hash \(expected) then "
                    + "\(staged.digest)); nothing was stored",
                path: io.path)
        }
        return try publish(staged, lookFirst: !hashFirst)
    }

    /// Copies a range into a temp file with `copy_file_range` (no copy through user space; a reflink on
    /// file systems that can), then hashes the copy: the name must match the bytes stored, whatever the
    /// source did meanwhile. `nil` when the store compresses or the kernel cannot copy between these files.
    func stageByKernelCopy(_ io: FileRef, offset: Int64, length: Int64) throws(CasketError) -> StagedBlob? {
        guard config.compression == .none, length > 0 else { return nil }
        let temp = try TempFile(in: layout.tmp)
        let out = temp.handle.io
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
                return nil  // this kernel or file system cannot: copy through user space instead
            case .failure(let errno):
                throw CasketError.write(out.path, errno: errno)
            }
        }
        let digest = try BlobStore.hashRange(out, offset: 0, length: length)
        return StagedBlob(temp: temp, digest: digest, size: length, compressed: false, storedBytes: length)
    }
}
