extension BlobStore {
    /// How a window read was verified.
    public enum WindowVerification: Sendable, Equatable {
        /// Only the chunks covering the window were read and checked against the blob's sidecar.
        case chunks(Int)
        /// The whole blob was hashed: it has no usable sidecar, its sidecar was wrong, or it is compressed.
        case whole
    }

    /// Streams bytes `range` of a blob's payload to `sink`, verified (docs/FORMAT.md 3.6).
    ///
    /// A raw blob with a usable sidecar is read chunk by chunk: only the chunks covering the range, each
    /// checked against its digest before any of its bytes reach the sink. A raw blob without one is hashed
    /// whole first, then the range is read. A compressed blob is decoded whole and verified at the end, the
    /// window's bytes handed on as they pass (as ``read(_:size:verify:to:)`` does).
    ///
    /// - Parameters:
    ///   - digest: The blob.
    ///   - range: Payload byte offsets, within the payload.
    ///   - size: The payload size when known (an index entry's `blobs`).
    ///   - sink: Receives consecutive pieces of the window.
    /// - Returns: How the bytes were verified.
    /// - Throws: ``CasketError/Code/invalidArgument`` when the range goes beyond the payload,
    ///   ``CasketError/Code/corrupt`` naming the blob file, the chunk and both digests (or the expected and
    ///   actual hash), ``CasketError/Code/notFound``.
    @discardableResult
    public func read(
        _ digest: Digest, range: Range<Int64>, size: Int64? = nil,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> WindowVerification {
        guard range.lowerBound >= 0 else {
            throw CasketError(.invalidArgument, "range \(range) of blob \(digest) starts before the payload")
        }
        // Nothing handed on yet: the other form, when sound, serves the window (FORMAT 3.5).
        return try streamWithFallback(digest, size: size) { (excluding, delivery) throws(CasketError) in
            try readWindow(digest, range: range, size: size, excluding: excluding) { (bytes) throws(CasketError) in
                delivery.started = true
                try sink(bytes)
            }
        }
    }

    func readWindow(
        _ digest: Digest, range: Range<Int64>, size: Int64?, excluding: Bool?,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> WindowVerification {
        let handle: FileHandle
        do {
            handle = try openSoundForm(digest, size: size, excluding: excluding)
        } catch  where excluding == nil && (error.code == .notFound || error.code == .corrupt) {
            // A packed payload is small and verified whole as it is read (docs/FORMAT.md 3.8).
            guard let bytes = try packedPayload(digest, size: size) else { throw error }
            let path = "pack record of blob \(digest)"
            try BlobStore.checkWindow(range, total: Int64(bytes.count), digest: digest, path: path)
            try typed {
                try bytes.withUnsafeBytes {
                    try sink(UnsafeRawBufferPointer(rebasing: $0[Int(range.lowerBound)..<Int(range.upperBound)]))
                }
            }
            return .whole
        }
        let io = handle.io
        if handle.path.hasSuffix(StoreLayout.compressedSuffix) {
            return try readCompressedWindow(handle, digest: digest, range: range, to: sink)
        }
        let total = try io.stat().size
        try BlobStore.checkWindow(range, total: total, digest: digest, path: io.path)
        if case .usable(let chunks) = sidecar(digest, size: total) {
            return try readChunks(io, chunks, range: range, to: sink)
        }
        try verifyWhole(io, digest: digest, total: total)
        try BlobStore.forEachPiece(io, offset: range.lowerBound, length: Int64(range.count), sink)
        return .whole
    }

    static func checkWindow(_ range: Range<Int64>, total: Int64, digest: Digest, path: String) throws(CasketError) {
        guard range.upperBound <= total else {
            throw CasketError(
                .invalidArgument,
                "range \(range.lowerBound):\(range.upperBound) is beyond the end of blob \(digest) (\(total) bytes)",
                path: path)
        }
    }

    func verifyWhole(_ io: FileRef, digest: Digest, total: Int64) throws(CasketError) {
        let actual = try BlobStore.hashRange(io, offset: 0, length: total, chunks: nil)
        guard actual == digest else {
            throw CasketError(
                .corrupt, "blob '\(io.path)' is corrupt: expected hash \(digest), actual \(actual) (\(total) bytes)",
                path: io.path)
        }
    }

    /// Reads the chunks covering `range`, each verified before its bytes are handed on. A chunk that does
    /// not match makes the whole blob decide: corrupt (an error naming the chunk and both digests), or
    /// sound, and then the sidecar is wrong and the rest of the window is served whole-verified.
    func readChunks(
        _ io: FileRef, _ chunks: ChunkDigests, range: Range<Int64>,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> WindowVerification {
        guard !range.isEmpty else { return .chunks(0) }
        let size = Int64(chunks.chunkSize)
        let first = Int(range.lowerBound / size)
        let last = Int((range.upperBound - 1) / size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunks.chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        for index in first...last {
            let span = chunks.range(ofChunk: index)
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(span.count)])
            guard try io.pread(into: piece, at: span.lowerBound) == piece.count else {
                throw CasketError(.corrupt, "blob '\(io.path)' shrank while chunk \(index) was read", path: io.path)
            }
            let actual = ChunkDigester.hash(UnsafeRawBufferPointer(piece))
            let expected = chunks.digests[index]
            let from = max(range.lowerBound, span.lowerBound)
            guard actual == expected else {
                do {
                    try verifyWhole(io, digest: chunks.digest, total: chunks.size)
                } catch  where error.code == .corrupt {
                    throw CasketError(
                        .corrupt,
                        "blob '\(io.path)' is corrupt: chunk \(index) (bytes \(span.lowerBound) to \(span.upperBound)) "
                            + "has XXH3-64 \(BlobStore.hex(actual)), its digest in '\(sidecarPath(chunks.digest))' is "
                            + "\(BlobStore.hex(expected)); blob \(chunks.digest)",
                        path: io.path)
                }
                try BlobStore.forEachPiece(io, offset: from, length: range.upperBound - from, sink)
                return .whole
            }
            let to = min(range.upperBound, span.upperBound)
            try sink(UnsafeRawBufferPointer(rebasing: piece[Int(from - span.lowerBound)..<Int(to - span.lowerBound)]))
        }
        return .chunks(last - first + 1)
    }

    func readCompressedWindow(
        _ handle: borrowing FileHandle, digest: Digest, range: Range<Int64>,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> WindowVerification {
        if let declared = judge(opened: handle.io, digest: digest, compressed: true, size: nil).location?.size {
            try BlobStore.checkWindow(range, total: declared, digest: digest, path: handle.path)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobStore.readChunk, alignment: 64)
        defer { buffer.deallocate() }
        var position: Int64 = 0
        let total = try read(opened: handle, digest: digest, verify: true, buffer: buffer) {
            (piece) throws(CasketError) in
            let from = max(range.lowerBound, position)
            let to = min(range.upperBound, position + Int64(piece.count))
            if from < to {
                try sink(UnsafeRawBufferPointer(rebasing: piece[Int(from - position)..<Int(to - position)]))
            }
            position += Int64(piece.count)
        }
        try BlobStore.checkWindow(range, total: total, digest: digest, path: handle.path)
        return .whole
    }

    /// A 64-bit digest as 16 lowercase hex digits, as the sidecar stores it (big-endian).
    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

extension BlobStore {
    /// Writes a window of a blob, verified by chunk, to a path (``ExportFile`` rules: a regular file appears
    /// only once the window is verified) or, when `path` is `nil`, to an open descriptor.
    ///
    /// - Returns: The number of bytes written.
    @discardableResult
    public func export(
        _ digest: Digest, range: PayloadRange, size: Int64? = nil, toFileAt path: String?,
        descriptor fd: Int32 = 1, name: String = "<stdout>"
    ) throws(CasketError) -> Int64 {
        let total: Int64
        if let size {
            total = size
        } else if let known = locate(digest)?.size {
            total = known
        } else {
            total = try read(digest) { (_) throws(CasketError) in }
        }
        let window = try range.resolved(size: total, of: "blob \(digest)")
        return try exportWindow(toFileAt: path, descriptor: fd, name: name) { (sink) throws(CasketError) in
            try read(digest, range: window, size: total, to: sink)
            return Int64(window.count)
        }
    }

    /// Runs `produce` with a sink into `path` (``ExportFile``) or, when `path` is `nil`, the descriptor.
    func exportWindow(
        toFileAt path: String?, descriptor fd: Int32, name: String,
        _ produce: ((UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Int64
    ) throws(CasketError) -> Int64 {
        if let path { return try exportStream(toFileAt: path, produce) }
        let out = FileRef(fd: fd, path: name)
        return try produce { (bytes) throws(CasketError) in try out.writeAll(bytes) }
    }
}

extension CacheStore {
    /// Writes a window of the single payload of `key`, verified by chunk, to a path or a descriptor (see
    /// ``BlobStore/export(_:range:size:toFileAt:descriptor:name:)``).
    @discardableResult
    public func export(
        _ key: String, range: PayloadRange, toFileAt path: String?, descriptor fd: Int32 = 1,
        name: String = "<stdout>"
    ) throws(CasketError) -> Int64 {
        switch try singlePayload(key) {
        case .blob(let ref):
            return try blobs.export(
                ref.digest, range: range, size: ref.size, toFileAt: path, descriptor: fd, name: name)
        case .inline(let bytes):
            let window = try range.resolved(size: Int64(bytes.count), of: "the value of key \(KeyDisplay.quoted(key))")
            return try blobs.exportWindow(toFileAt: path, descriptor: fd, name: name) { (sink) throws(CasketError) in
                try typed {
                    try bytes.withUnsafeBytes { (all) in
                        try sink(UnsafeRawBufferPointer(rebasing: all[Int(window.lowerBound)..<Int(window.upperBound)]))
                    }
                }
                return Int64(window.count)
            }
        }
    }
}
