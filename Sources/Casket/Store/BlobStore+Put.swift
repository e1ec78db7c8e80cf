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
        if let hit = deduplicate(digest, size: Int64(bytes.count)) {
            try ensureSidecar(digest, size: hit.size) { () throws(CasketError) in
                let digester = ChunkDigester()
                digester.update(bytes)
                return digester.finish()
            }
            return hit
        }
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

    /// A dedup hit: a sound form of the blob exists (docs/FORMAT.md 3.4) and its mtime was refreshed. A
    /// failed freshen is a miss. The form is judged and freshened through one descriptor opened without
    /// following symlinks, so what is trusted is what was checked.
    func deduplicate(_ digest: Digest, size: Int64) -> PutResult? {
        guard let fanout = try? directories.fanout(digest) else { return nil }
        for compressed in [false, true] {
            let name = blobName(digest, compressed: compressed)
            // A missing form costs an lstat, not an open and the error it builds: most puts miss (a new
            // payload; in a store that packs, nearly every small one).
            if case .failure(.noSuchFileOrDirectory) = fanout.status(name) { continue }
            guard let handle = try? fanout.openForReading(name),
                case .sound(let location) = judge(opened: handle.io, digest: digest, compressed: compressed, size: size)
            else { continue }
            guard case .success = handle.io.touch() else { return nil }
            removeUnsoundTwin(digest, of: compressed, size: size)
            return PutResult(
                digest: digest, size: size, deduplicated: true, compressed: compressed,
                storedBytes: location.storedBytes)
        }
        return nil
    }

    /// Removes the other form of a blob when it is unsound, once the form `kept` is known to be sound:
    /// readers and garbage collection must never prefer such a file to the sound one. A racing writer that
    /// replaces it meanwhile with a sound file loses nothing, since the kept form stays.
    func removeUnsoundTwin(_ digest: Digest, of kept: Bool, size: Int64) {
        guard case .unsound = judge(digest, compressed: !kept, size: size),
            let fanout = try? directories.fanout(digest)
        else { return }
        _ = fanout.remove(blobName(digest, compressed: !kept))
    }

    /// Writes a payload to a temp file, hashing it and compressing it when the store asks for it.
    ///
    /// `produce` calls `feed` with consecutive pieces of the payload. With `compression: lz4` the first
    /// ``compressionSample`` bytes are held back until the form is chosen from them
    /// (``worthCompressing(_:)``), so the choice depends on the payload only, never on how it was cut.
    func stage(
        knownSize: Int64?,
        _ produce: (_ feed: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Void
    ) throws(CasketError) -> StagedBlob {
        let temp = try AtomicFile(in: directories.folder(.tmp), mode: 0o444)
        let out = temp.io
        var hasher = StreamingHasher()
        let digester = ChunkDigester()
        var encoder: LZ4FrameEncoder? = nil
        var sample: [UInt8]? = config.compression == .none ? nil : []
        var size: Int64 = 0
        var stored: Int64 = 0
        let write: (UnsafeRawBufferPointer) throws(CasketError) -> Void = { (bytes) throws(CasketError) in
            try out.writeAll(bytes)
            stored += Int64(bytes.count)
        }
        func pass(_ chunk: UnsafeRawBufferPointer) throws(CasketError) {
            if encoder != nil { try encoder!.update(chunk, write) } else { try write(chunk) }
        }
        func decide() throws(CasketError) {
            guard let held = sample else { return }
            sample = nil
            if held.withUnsafeBytes({ BlobStore.worthCompressing($0) }) {
                encoder = try LZ4FrameEncoder(contentSize: knownSize)
                try encoder!.begin(write)
            }
            try typed { try held.withUnsafeBytes { try pass($0) } }
        }
        try produce { (chunk) throws(CasketError) in
            hasher.update(chunk)
            digester.update(chunk)
            size += Int64(chunk.count)
            guard sample != nil else { return try pass(chunk) }
            let room = min(BlobStore.compressionSample - sample!.count, chunk.count)
            sample!.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[..<room]))
            guard sample!.count == BlobStore.compressionSample else { return }
            try decide()
            if room < chunk.count { try pass(UnsafeRawBufferPointer(rebasing: chunk[room...])) }
        }
        try decide()
        let compressed = encoder != nil
        if compressed { try encoder!.end(write) }
        return StagedBlob(
            temp: temp, digest: hasher.finalize(), size: size, compressed: compressed, storedBytes: stored,
            chunks: ChunkDigests.wanted(size: size, minimum: config.chunksMin) ? digester.finish() : nil)
    }

    /// How many leading bytes of a payload decide its form (docs/FORMAT.md 3.2).
    static let compressionSample = 1 << 20

    /// The form rule (docs/FORMAT.md 3.2): the sample (the payload's first `min(size, 1 MiB)` bytes) is
    /// compressed as one LZ4 block (`LZ4_compress_default`); the payload is kept compressed iff the sample
    /// has at least 64 bytes and that block is at most 90 % of it. Python applies the same rule.
    static func worthCompressing(_ sample: UnsafeRawBufferPointer) -> Bool {
        guard sample.count >= 64 else { return false }
        let bound = Int(LZ4_compressBound(Int32(sample.count)))
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 16)
        defer { scratch.deallocate() }
        let n = LZ4_compress_default(
            sample.baseAddress!.assumingMemoryBound(to: CChar.self),
            scratch.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(sample.count), Int32(bound))
        return n > 0 && 10 * Int(n) <= 9 * sample.count
    }
}
