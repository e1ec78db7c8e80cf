extension BlobStore {
    /// Whether a blob is stored, in a sound form (docs/FORMAT.md 3.4).
    public func contains(_ digest: Digest) -> Bool { locate(digest) != nil || packsHold(digest, size: nil) }

    /// Whether a blob of `size` payload bytes is stored in a sound form, loose or packed. A size this store
    /// packs is looked for in the packs first (in memory once their indexes are read), then as a blob file
    /// (two `lstat`s): a writer's check of its batch (FORMAT 5.5 step 4) finds its records without them.
    public func contains(_ digest: Digest, size: Int64) -> Bool {
        if packs(size: size) { return packsHold(digest, size: size) || locate(digest, size: size) != nil }
        return locate(digest, size: size) != nil || packsHold(digest, size: size)
    }

    /// Where a blob is stored in a sound form (the raw one when both are), or `nil` when it is not.
    ///
    /// - Parameter size: The payload size when known (an index entry's `blobs`): a form of another size is
    ///   not the blob.
    public func locate(_ digest: Digest, size: Int64? = nil) -> BlobLocation? {
        let forms = judgeForms(digest, size: size)
        return forms.raw.location ?? forms.compressed.location
    }

    /// The path of a blob stored as sound raw bytes, for memory-mapping; `nil` when it is absent or compressed.
    ///
    /// Mapped bytes are not verified: use ``read(_:size:verify:to:)`` or ``verify(_:)`` when that matters.
    public func mappablePath(_ digest: Digest) -> String? { judgeForms(digest, size: nil).raw.location?.path }

    /// Streams a blob's payload to `sink`, decompressing as needed and verifying its hash at the end.
    ///
    /// The form read is the raw one if sound, else the compressed one if sound; a form found corrupt before
    /// any byte reached the sink gives way to a sound twin. The sink receives bytes before verification
    /// completes: a caller that must not expose unverified data writes them somewhere private and publishes
    /// only after this returns (``readAll(_:size:)`` and the exports also fall back after bytes were given).
    ///
    /// - Parameters:
    ///   - digest: The blob.
    ///   - size: The payload size when known (an index entry's `blobs`).
    ///   - verify: Whether to check the hash (default true).
    ///   - sink: Receives consecutive pieces of the payload.
    /// - Returns: The payload size.
    /// - Throws: ``CasketError/Code/notFound``; ``CasketError/Code/corrupt`` naming the blob file with the
    ///   expected and actual hash, or each unsound form and why.
    @discardableResult
    public func read(
        _ digest: Digest,
        size: Int64? = nil,
        verify: Bool = true,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> Int64 {
        try streamWithFallback(digest, size: size) { (excluding, delivery) throws(CasketError) in
            try read(digest, size: size, excluding: excluding, verify: verify) { (bytes) throws(CasketError) in
                delivery.started = true
                try sink(bytes)
            }
        }
    }

    /// Whether a read has handed bytes on: a read that has can no longer start over on the other form.
    final class Delivery {
        var started = false
    }

    /// Runs `attempt` on the preferred sound form; when that form turns out corrupt before any byte was handed
    /// on and the other form is sound, runs it again on the other form (FORMAT 3.5).
    func streamWithFallback<R>(
        _ digest: Digest, size: Int64?, _ attempt: (_ excluding: Bool?, _ delivery: Delivery) throws(CasketError) -> R
    ) throws(CasketError) -> R {
        let delivery = Delivery()
        do {
            return try attempt(nil, delivery)
        } catch  where error.code == .corrupt && !delivery.started {
            guard let failed = failedForm(digest, error, size: size) else { throw error }
            return try attempt(failed, delivery)
        }
    }

    /// Reads one sound form of a blob, never the one `excluding` names (compressed or not).
    func read(
        _ digest: Digest, size: Int64?, excluding: Bool?, verify: Bool,
        to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) -> Int64 {
        // No blob file in either form: straight to the packs (the common case in a store whose small payloads
        // are packed), without building the two misses' errors.
        if excluding == nil, noBlobFile(digest), let bytes = try packedPayload(digest, size: size) {
            try typed { try bytes.withUnsafeBytes { try sink($0) } }
            return Int64(bytes.count)
        }
        let handle: FileHandle
        do {
            handle = try openSoundForm(digest, size: size, excluding: excluding)
        } catch  where excluding == nil && (error.code == .notFound || error.code == .corrupt) {
            // No sound blob file: a pack may hold the payload (docs/FORMAT.md 3.8), verified as it is read.
            guard let bytes = try packedPayload(digest, size: size) else { throw error }
            try typed { try bytes.withUnsafeBytes { try sink($0) } }
            return Int64(bytes.count)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobStore.readChunk, alignment: 64)
        defer { buffer.deallocate() }
        do {
            return try read(opened: handle, digest: digest, verify: verify, buffer: buffer, to: sink)
        } catch  where error.code == .corrupt && excluding == nil {
            // Say so when the other form could serve the read: fsck quarantines this file.
            let other = !handle.path.hasSuffix(StoreLayout.compressedSuffix)
            guard let twin = judge(digest, compressed: other, size: size).location else { throw error }
            var error = error
            error.message += "; its other form '\(twin.path)' is sound (fsck quarantines this file)"
            throw error
        }
    }

    /// Whether neither form of the blob has an entry (an `lstat` each; none without a fan-out folder).
    func noBlobFile(_ digest: Digest) -> Bool {
        guard let fanout = try? directories.fanout(digest) else { return true }
        return [false, true].allSatisfy {
            if case .failure(.noSuchFileOrDirectory) = fanout.status(blobName(digest, compressed: $0)) { return true }
            return false
        }
    }

    /// Runs `attempt` on the preferred sound form of a blob; when that form turns out corrupt and the other
    /// form is sound, runs it once more, excluding the corrupt one. `attempt` must start its output over.
    func withFallback<R>(
        _ digest: Digest, size: Int64?, _ attempt: (_ excluding: Bool?) throws(CasketError) -> R
    ) throws(CasketError) -> R {
        do {
            return try attempt(nil)
        } catch  where error.code == .corrupt {
            guard let failed = failedForm(digest, error, size: size) else { throw error }
            return try attempt(failed)
        }
    }

    /// The form (compressed or not) that a corrupt error is about, if the other form is sound.
    func failedForm(_ digest: Digest, _ error: CasketError, size: Int64?) -> Bool? {
        guard let path = error.path else { return nil }
        let failed: Bool
        if path == layout.compressedPath(digest) {
            failed = true
        } else if path == layout.rawPath(digest) {
            failed = false
        } else {
            return nil
        }
        return judge(digest, compressed: !failed, size: size).location == nil ? nil : failed
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

    /// Reads a whole blob into memory, verified; a corrupt form gives way to a sound twin. Meant for small
    /// payloads; stream large ones with ``read(_:size:verify:to:)``.
    public func readAll(_ digest: Digest, size: Int64? = nil) throws(CasketError) -> [UInt8] {
        try withFallback(digest, size: size) { (excluding) throws(CasketError) in
            var bytes: [UInt8] = []
            _ = try read(digest, size: size, excluding: excluding, verify: true) { (chunk) throws(CasketError) in
                bytes.append(contentsOf: chunk)
            }
            return bytes
        }
    }

    /// Checks a blob's hash by reading the form readers take (raw first) whole.
    ///
    /// - Throws: ``CasketError/Code/corrupt`` or ``CasketError/Code/notFound``.
    public func verify(_ digest: Digest) throws(CasketError) {
        try read(digest) { (_) throws(CasketError) in }
    }
}
