extension BlobStore {
    /// Stores exactly `length` bytes of a file starting at `offset`, streaming them with `pread`.
    ///
    /// Like ``put(fileAt:)``: a hash pass first (an existing blob is freshened and nothing is written),
    /// then a copy pass whose hash is checked against the first. Offsets need no alignment.
    ///
    /// - Parameters:
    ///   - path: A regular file.
    ///   - offset: The first byte of the range.
    ///   - length: The number of bytes.
    /// - Throws: ``CasketError/Code/invalidArgument`` when the range is negative or goes beyond the end of the
    ///   file, ``CasketError/Code/changedWhileReading`` when the bytes changed between the two passes, and
    ///   the errors of ``put(fileAt:)``.
    public func put(fileAt path: String, offset: Int64, length: Int64) throws(CasketError) -> PutResult {
        let handle = try FileHandle.openForReading(path)
        let st = try handle.io.stat()
        guard st.isRegularFile else {
            throw CasketError(
                .notARegularFile, "cannot store a range of '\(path)': it is not a regular file", path: path)
        }
        guard offset >= 0, length >= 0, offset <= st.size, length <= st.size - offset else {
            throw CasketError(
                .invalidArgument,
                "range [\(offset), \(offset) + \(length)) is beyond the end of '\(path)' (\(st.size) bytes)",
                path: path)
        }
        let io = handle.io
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Int(min(Int64(BlobStore.chunkSize), max(length, 1))), alignment: 64)
        defer { buffer.deallocate() }
        // Calls `body` with consecutive pieces of the range; a short read means the file shrank.
        func forEachPiece(_ body: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) {
            var done: Int64 = 0
            while done < length {
                let want = Int(min(Int64(buffer.count), length - done))
                let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[..<want])
                let n = try io.pread(into: piece, at: offset + done)
                guard n == want else {
                    throw CasketError(
                        .changedWhileReading, "'\(path)' shrank while bytes \(offset)+\(length) were being stored",
                        path: path)
                }
                try body(UnsafeRawBufferPointer(piece))
                done += Int64(n)
            }
        }
        var hasher = StreamingHasher()
        try forEachPiece { (piece) throws(CasketError) in hasher.update(piece) }
        let digest = hasher.finalize()
        if let hit = deduplicate(digest, size: length) { return hit }
        let staged = try stage(knownSize: length) { (feed) throws(CasketError) in try forEachPiece(feed) }
        guard staged.digest == digest, staged.size == length else {
            throw CasketError(
                .changedWhileReading,
                "'\(path)' changed while bytes \(offset)+\(length) were being stored (hash \(digest) then \(staged.digest)); nothing was stored",
                path: path)
        }
        return try publish(staged)
    }

    /// The XXH3-128 digest of a byte range of a file, streamed (nothing is stored).
    ///
    /// - Throws: ``CasketError/Code/invalidArgument`` when the range goes beyond the end of the file.
    public static func digest(ofFileAt path: String, offset: Int64 = 0, length: Int64? = nil) throws(CasketError)
        -> Digest
    {
        let handle = try FileHandle.openForReading(path)
        let st = try handle.io.stat()
        let length = length ?? (st.size - offset)
        guard offset >= 0, length >= 0, offset <= st.size, length <= st.size - offset else {
            throw CasketError(
                .invalidArgument,
                "range [\(offset), \(offset) + \(length)) is beyond the end of '\(path)' (\(st.size) bytes)",
                path: path)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Int(min(Int64(BlobStore.chunkSize), max(length, 1))), alignment: 64)
        defer { buffer.deallocate() }
        var hasher = StreamingHasher()
        var done: Int64 = 0
        while done < length {
            let want = Int(min(Int64(buffer.count), length - done))
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[..<want])
            let n = try handle.io.pread(into: piece, at: offset + done)
            guard n == want else {
                throw CasketError(.changedWhileReading, "'\(path)' shrank while it was being hashed", path: path)
            }
            hasher.update(UnsafeRawBufferPointer(piece))
            done += Int64(n)
        }
        return hasher.finalize()
    }
}
