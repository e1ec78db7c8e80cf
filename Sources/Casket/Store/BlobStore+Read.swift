extension BlobStore {
    /// Whether a blob is stored, in either form.
    public func contains(_ digest: Digest) -> Bool {
        if case .sound = inspect(digest, size: nil) { return true }
        return false
    }

    /// Where a blob is stored, or `nil` when it is not.
    public func locate(_ digest: Digest) -> BlobLocation? {
        if case .sound(let location) = inspect(digest, size: nil) { return location }
        return nil
    }

    /// The path of a blob stored as raw bytes, for memory-mapping; `nil` when it is absent or compressed.
    ///
    /// Mapped bytes are not verified: use ``read(_:verify:to:)`` or ``verify(_:)`` when that matters.
    public func mappablePath(_ digest: Digest) -> String? {
        guard let fanout = try? directories.fanout(digest),
            case .success(let st) = fanout.status(blobName(digest, compressed: false)), st.isRegularFile
        else { return nil }
        return layout.rawPath(digest)
    }

    /// Streams a blob's payload to `sink`, decompressing as needed and verifying its hash at the end.
    ///
    /// The sink receives bytes before verification completes: a caller that must not expose unverified
    /// data writes them somewhere private and publishes only after this returns.
    ///
    /// - Parameters:
    ///   - digest: The blob.
    ///   - verify: Whether to check the hash (default true).
    ///   - sink: Receives consecutive pieces of the payload.
    /// - Returns: The payload size.
    /// - Throws: ``CasketError/Code/notFound``; ``CasketError/Code/corrupt`` naming the blob file with the
    ///   expected and actual hash.
    @discardableResult
    public func read(
        _ digest: Digest,
        verify: Bool = true,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> Int64 {
        let handle = try openBlob(digest)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobStore.readChunk, alignment: 64)
        defer { buffer.deallocate() }
        return try read(opened: handle, digest: digest, verify: verify, buffer: buffer, to: sink)
    }

    /// Raw blobs at least this large are read one chunk ahead on a second thread.
    static let readAheadMinimum: Int64 = 8 << 20

    /// Reads one blob file's payload (the form its path's suffix names), verifying its hash when asked.
    func read(
        opened handle: borrowing FileHandle,
        digest: Digest,
        verify: Bool,
        buffer: UnsafeMutableRawBufferPointer,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> Int64 {
        let compressed = handle.path.hasSuffix(StoreLayout.compressedSuffix)
        handle.io.adviseSequential()
        var hasher = StreamingHasher()
        var size: Int64 = 0
        func deliver(_ bytes: UnsafeRawBufferPointer) throws(CasketError) {
            if verify { hasher.update(bytes) }
            size += Int64(bytes.count)
            try sink(bytes)
        }
        if compressed {
            var decoder = try LZ4FrameDecoder()
            do {
                while true {
                    let n = try handle.io.read(into: buffer)
                    if n == 0 { break }
                    try decoder.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]), deliver)
                }
                try decoder.flush(deliver)
            } catch  where error.code == .compression || error.code == .corrupt {
                throw CasketError(.corrupt, "blob '\(handle.path)' is corrupt: \(error.message)", path: handle.path)
            }
            guard decoder.finished else {
                throw CasketError(
                    .corrupt, "blob '\(handle.path)' is corrupt: the LZ4 frame is truncated", path: handle.path)
            }
        } else if (try? handle.io.stat().size) ?? 0 >= BlobStore.readAheadMinimum {
            // Large raw blobs: the next read runs on another thread while this one hashes and hands on.
            let ahead = ReadAhead(handle.io, chunk: 1 << 20)
            defer { ahead.finish() }
            while let chunk = try ahead.next() { try deliver(chunk) }
        } else {
            while true {
                let n = try handle.io.read(into: buffer)
                if n == 0 { break }
                try deliver(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            }
        }
        if verify {
            let actual = hasher.finalize()
            guard actual == digest else {
                throw CasketError(
                    .corrupt,
                    "blob '\(handle.path)' is corrupt: expected hash \(digest), actual \(actual) (\(size) bytes)",
                    path: handle.path
                )
            }
        }
        return size
    }

    /// Reads a whole blob into memory, verified. Meant for small payloads; stream large ones with
    /// ``read(_:verify:to:)``.
    public func readAll(_ digest: Digest) throws(CasketError) -> [UInt8] {
        var bytes: [UInt8] = []
        try read(digest) { (chunk) throws(CasketError) in bytes.append(contentsOf: chunk) }
        return bytes
    }

    /// Checks a blob's hash by reading it whole.
    ///
    /// - Throws: ``CasketError/Code/corrupt`` or ``CasketError/Code/notFound``.
    public func verify(_ digest: Digest) throws(CasketError) {
        try read(digest) { (_) throws(CasketError) in }
    }

    /// Opens a blob's file, raw form first; the path's suffix tells which form it is.
    ///
    /// A blob is a regular file: a link, FIFO or folder under a blob's name is not one, so the other form
    /// is tried, and when neither is a blob the error says what was found instead (never its target).
    func openBlob(_ digest: Digest) throws(CasketError) -> FileHandle {
        let rawPath = layout.rawPath(digest)
        guard let fanout = try directories.fanout(digest) else {
            throw CasketError(.notFound, "blob \(digest) is not in the store '\(root)'", path: rawPath)
        }
        var refused: CasketError? = nil
        for compressed in [false, true] {
            do {
                return try fanout.openForReading(blobName(digest, compressed: compressed))
            } catch let error where error.code == .notFound {
                continue
            } catch let error where error.code == .unsafePath || error.code == .notARegularFile {
                refused = refused ?? error
            }
        }
        if let refused { throw refused }
        throw CasketError(.notFound, "blob \(digest) is not in the store '\(root)'", path: rawPath)
    }
}
