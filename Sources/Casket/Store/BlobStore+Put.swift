import CLZ4

extension BlobStore {
    /// Bytes handed on per step when staging a stream or bytes in memory.
    static let chunkSize = 4 << 20

    /// Stores bytes held in memory.
    ///
    /// The hash is computed first; if the blob already exists it is freshened and nothing is written.
    ///
    /// - Parameter bytes: The payload.
    /// - Returns: The digest and what was done.
    /// - Throws: ``CasketError`` naming the file when writing fails (``CasketError/Code/noSpace`` on a full
    ///   disk); the temp file is removed and no partial blob is ever published.
    public func put(_ bytes: UnsafeRawBufferPointer) throws(CasketError) -> PutResult {
        let digest = Digest(hashing: bytes)
        if let hit = deduplicate(digest, size: Int64(bytes.count)) { return hit }
        let staged = try stage(knownSize: Int64(bytes.count)) { (feed) throws(CasketError) in
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + BlobStore.chunkSize, bytes.count)
                try feed(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
            }
        }
        return try publish(staged, lookFirst: false)
    }

    /// Stores an array of bytes. See ``put(_:)-(UnsafeRawBufferPointer)``.
    public func put(_ bytes: [UInt8]) throws(CasketError) -> PutResult {
        try typed { try bytes.withUnsafeBytes { try put($0) } }
    }

    /// Stores the contents of a file, streaming it: memory use does not depend on the file's size.
    ///
    /// The file is read twice when the blob is new (once to hash and look it up, once to copy, with the
    /// hash checked again), and once when it is already stored.
    ///
    /// - Parameter path: A regular file.
    /// - Throws: ``CasketError/Code/notFound``, ``CasketError/Code/notARegularFile``,
    ///   ``CasketError/Code/permissionDenied``, ``CasketError/Code/noSpace``, or
    ///   ``CasketError/Code/changedWhileReading`` when the file changed between the two passes.
    public func put(fileAt path: String) throws(CasketError) -> PutResult {
        let handle = try FileHandle.openForReading(path)
        let size = try BlobStore.checkRange(handle.io, offset: 0, length: 0)
        return try putRange(handle.io, offset: 0, length: size, hashFirst: true)
    }

    /// Stores a stream of unknown length, such as standard input, written to a temp file as it arrives.
    ///
    /// - Parameter read: Fills the buffer it is given and returns the byte count, 0 at the end.
    public func put(
        streaming read: (UnsafeMutableRawBufferPointer) throws(CasketError) -> Int
    ) throws(CasketError) -> PutResult {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobStore.chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        let staged = try stage(knownSize: nil) { (feed) throws(CasketError) in
            while true {
                let n = try read(buffer)
                if n == 0 { break }
                try feed(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            }
        }
        return try publish(staged)
    }

    /// Stores everything readable from a file descriptor (for example 0, standard input).
    ///
    /// - Parameters:
    ///   - fd: An open descriptor; it is not closed.
    ///   - name: What to call it in error messages.
    public func put(readingDescriptor fd: Int32, name: String) throws(CasketError) -> PutResult {
        let io = FileRef(fd: fd, path: name)
        return try put(streaming: { (buffer) throws(CasketError) in try io.read(into: buffer) })
    }

    /// A dedup hit: the blob exists, is sound, and its mtime was refreshed. A failed freshen is a miss.
    func deduplicate(_ digest: Digest, size: Int64) -> PutResult? {
        guard case .sound(let location) = inspect(digest, size: size), freshen(digest, compressed: location.compressed)
        else { return nil }
        if location.compressed { removeUnsoundRaw(digest, size: size) }
        return PutResult(
            digest: digest, size: size, deduplicated: true, compressed: location.compressed,
            storedBytes: location.storedBytes)
    }

    /// Removes a file under a blob's raw name that cannot be its payload (wrong size, empty), once the
    /// compressed form is known to be sound: readers open the raw form first, so such debris would hide
    /// the frame and make every read fail as corrupt. A raw blob's size is exactly the payload's, so a
    /// file of another size is never a valid blob; a racing raw writer that replaces it meanwhile loses
    /// nothing, since the frame stays.
    func removeUnsoundRaw(_ digest: Digest, size: Int64) {
        let name = blobName(digest, compressed: false)
        guard let fanout = try? directories.fanout(digest), case .success(let st) = fanout.status(name),
            st.isRegularFile, st.size != size
        else { return }
        _ = fanout.remove(name)
    }

    /// Sets a blob file's mtime to the file system's now; false when that is refused.
    func freshen(_ digest: Digest, compressed: Bool) -> Bool {
        guard let fanout = try? directories.fanout(digest) else { return false }
        if case .success = fanout.touch(blobName(digest, compressed: compressed)) { return true }
        return false
    }

    /// Writes a payload to a temp file, hashing it and compressing it when the store asks for it.
    ///
    /// `produce` calls `feed` with consecutive pieces of the payload.
    func stage(
        knownSize: Int64?,
        _ produce: (_ feed: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Void
    ) throws(CasketError) -> StagedBlob {
        let temp = try AtomicFile(in: directories.folder(.tmp), mode: 0o444)
        let out = temp.io
        var hasher = StreamingHasher()
        var encoder: LZ4FrameEncoder? = nil
        var decided = config.compression == .none
        var size: Int64 = 0
        var stored: Int64 = 0
        let write: (UnsafeRawBufferPointer) throws(CasketError) -> Void = { (bytes) throws(CasketError) in
            try out.writeAll(bytes)
            stored += Int64(bytes.count)
        }
        try produce { (chunk) throws(CasketError) in
            hasher.update(chunk)
            size += Int64(chunk.count)
            if !decided {
                decided = true
                if BlobStore.worthCompressing(chunk) {
                    encoder = try LZ4FrameEncoder(contentSize: knownSize)
                    try encoder!.begin(write)
                }
            }
            if encoder != nil { try encoder!.update(chunk, write) } else { try write(chunk) }
        }
        var compressed = false
        if encoder != nil {
            try encoder!.end(write)
            compressed = true
        }
        let staged = StagedBlob(
            temp: temp, digest: hasher.finalize(), size: size, compressed: compressed, storedBytes: stored)
        if compressed && Double(stored) > Double(size) * (1 - StoreConfig.minimumCompressionSaving) {
            return try decompressStaged(staged)
        }
        return staged
    }

    /// Whether a sample (the payload's first piece) compresses by at least the minimum saving.
    static func worthCompressing(_ chunk: UnsafeRawBufferPointer) -> Bool {
        let sample = UnsafeRawBufferPointer(rebasing: chunk[..<min(chunk.count, 1 << 20)])
        guard sample.count >= 64 else { return false }
        let bound = Int(LZ4_compressBound(Int32(sample.count)))
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 16)
        defer { scratch.deallocate() }
        let n = LZ4_compress_default(
            sample.baseAddress!.assumingMemoryBound(to: CChar.self),
            scratch.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(sample.count), Int32(bound))
        return n > 0 && Double(n) <= Double(sample.count) * (1 - StoreConfig.minimumCompressionSaving)
    }

    /// Rewrites a compressed temp file as raw bytes, when the whole payload compressed worse than its sample.
    func decompressStaged(_ staged: consuming StagedBlob) throws(CasketError) -> StagedBlob {
        let tmp = try directories.folder(.tmp)
        let raw = try AtomicFile(in: tmp, mode: 0o444)
        let out = raw.io
        let source = try tmp.openForReading(staged.temp.name)
        var decoder = try LZ4FrameDecoder()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobStore.chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = try source.io.read(into: buffer)
            if n == 0 { break }
            try decoder.update(UnsafeRawBufferPointer(rebasing: buffer[..<n])) { (bytes) throws(CasketError) in
                try out.writeAll(bytes)
            }
        }
        return StagedBlob(
            temp: raw, digest: staged.digest, size: staged.size, compressed: false, storedBytes: staged.size)
    }
}
