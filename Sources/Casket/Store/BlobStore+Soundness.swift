extension BlobStore {
    /// What one form of a blob on disk is worth (docs/FORMAT.md 3.4, the one definition of "sound").
    ///
    /// Every decision between forms goes through it: the dedup check, the readers' choice of form,
    /// `contains`/`locate` (`blob has`), garbage collection's twin rule and fsck's missing blobs. A form
    /// that is not sound is never trusted, deduplicated against, read, or kept in preference to a sound one.
    public enum FormJudgement: Sendable, Equatable {
        /// The file can be the payload: a regular file of the right size, or one complete LZ4 frame.
        case sound(BlobLocation)
        /// A file is under the form's name but cannot be the payload; `reason` says why.
        case unsound(path: String, reason: String)
        /// No file has the form's name.
        case absent

        /// The location, when sound.
        public var location: BlobLocation? {
            if case .sound(let location) = self { return location }
            return nil
        }
    }

    /// Judges one form of a blob.
    ///
    /// - Parameters:
    ///   - digest: The blob.
    ///   - compressed: Which form.
    ///   - size: The payload size when known (an index entry's `blobs`, a payload being written).
    @_spi(Maintenance) public func judge(_ digest: Digest, compressed: Bool, size: Int64?) -> FormJudgement {
        let path = layout.path(digest, compressed: compressed)
        switch openForm(digest, compressed: compressed) {
        case .success(let handle): return judge(opened: handle.io, digest: digest, compressed: compressed, size: size)
        case .failure(let error) where error.code == .notFound: return .absent
        case .failure(let error): return .unsound(path: path, reason: BlobStore.flaw(error, path: path))
        }
    }

    /// Opens one form through its fan-out folder (never through a link; a FIFO never blocks).
    func openForm(_ digest: Digest, compressed: Bool) -> Result<FileHandle, CasketError> {
        do {
            guard let fanout = try directories.fanout(digest) else {
                return .failure(CasketError(.notFound, "no fan-out folder", path: layout.fanout(digest)))
            }
            let name = blobName(digest, compressed: compressed)
            // lstat first, as the Python client does: a link, FIFO, device or folder is never opened.
            if case .success(let status) = fanout.status(name), !status.isRegularFile {
                let path = fanout.path(of: name)
                return .failure(
                    CasketError(.notARegularFile, "'\(path)' is \(status.kind), not a regular file", path: path))
            }
            return .success(try fanout.openForReading(name))
        } catch {
            return .failure(error)
        }
    }

    /// Why an open refused a form, as a phrase about the file ("it is a symbolic link ...").
    static func flaw(_ error: CasketError, path: String) -> String {
        let prefix = "'\(path)' "
        return error.description.hasPrefix(prefix)
            ? "it " + error.description.dropFirst(prefix.count) : error.description
    }

    /// Judges a form through its open descriptor, so that what is judged is what is then read or freshened.
    func judge(opened io: FileRef, digest: Digest, compressed: Bool, size: Int64?) -> FormJudgement {
        guard let st = try? io.stat() else { return .unsound(path: io.path, reason: "it cannot be examined") }
        guard st.isRegularFile else { return .unsound(path: io.path, reason: "it is not a regular file") }
        // A name swapped for a symlink between lstat and open fails the open (O_NOFOLLOW).
        func location(_ payload: Int64?) -> FormJudgement {
            .sound(
                BlobLocation(
                    digest: digest, path: io.path, compressed: compressed, storedBytes: st.size, size: payload,
                    mtimeNanoseconds: st.mtimeNanoseconds))
        }
        if !compressed {
            if let size, st.size != size {
                return .unsound(path: io.path, reason: "it holds \(st.size) bytes, the payload \(size)")
            }
            if st.size == 0 && digest != .empty {
                return .unsound(path: io.path, reason: "it is empty and the blob is not the empty payload")
            }
            return location(st.size)
        }
        let walked: Result<LZ4FrameWalk, LZ4FrameWalk.Flaw>
        do {
            walked = try LZ4FrameWalk.walk(io, fileSize: st.size)
        } catch {
            return .unsound(path: io.path, reason: "it cannot be read (\(error))")
        }
        switch walked {
        case .failure(let flaw): return .unsound(path: io.path, reason: flaw.description)
        case .success(let frame):
            if let size, let declared = frame.contentSize, declared != size {
                return .unsound(path: io.path, reason: "its LZ4 frame declares \(declared) bytes, the payload \(size)")
            }
            return location(frame.contentSize ?? size)
        }
    }

    /// Judges both forms; the raw one is judged against the payload size, or, when that is unknown, against
    /// the size a sound frame declares (a raw file of another size beside it cannot be the payload).
    @_spi(Maintenance) public func judgeForms(
        _ digest: Digest, size: Int64?
    ) -> (raw: FormJudgement, compressed: FormJudgement) {
        if let size {
            return (judge(digest, compressed: false, size: size), judge(digest, compressed: true, size: size))
        }
        var compressed = judge(digest, compressed: true, size: nil)
        var expected = compressed.location?.size
        if let frame = compressed.location, expected == nil, let fanout = try? directories.fanout(digest),
            case .success = fanout.status(blobName(digest, compressed: false))
        {
            // A frame without a content size (a stream's) beside a raw file: only decoding tells which size
            // is the payload's. Rare (a race of two forms), and bounded in memory.
            expected = decodedSize(digest)
            if expected == nil { compressed = .unsound(path: frame.path, reason: "its LZ4 frame does not decode") }
        }
        return (judge(digest, compressed: false, size: expected), compressed)
    }

    /// The number of bytes a blob's frame decodes to, `nil` when it does not decode to its end.
    func decodedSize(_ digest: Digest) -> Int64? {
        guard case .success(let handle) = openForm(digest, compressed: true) else { return nil }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobStore.readChunk, alignment: 64)
        defer { buffer.deallocate() }
        var size: Int64 = 0
        do {
            var decoder = try LZ4FrameDecoder()
            let count: (UnsafeRawBufferPointer) throws(CasketError) -> Void = { size += Int64($0.count) }
            while true {
                let n = try handle.io.read(into: buffer)
                if n == 0 { break }
                try decoder.update(UnsafeRawBufferPointer(rebasing: buffer[..<n]), count)
            }
            try decoder.flush(count)
            return decoder.finished ? size : nil
        } catch {
            return nil
        }
    }

    /// Opens the form a reader should read: the raw form if sound, else the compressed form if sound.
    ///
    /// - Parameter excluding: A form not to consider (one whose read just failed).
    /// - Throws: ``CasketError/Code/notFound`` when neither form exists, ``CasketError/Code/corrupt``
    ///   naming each unsound file and why when no form is sound.
    func openSoundForm(_ digest: Digest, size: Int64?, excluding: Bool? = nil) throws(CasketError) -> FileHandle {
        let expected = size ?? (excluding == true ? nil : judge(digest, compressed: true, size: nil).location?.size)
        var flaws: [String] = []
        for compressed in [false, true] where compressed != excluding {
            let path = layout.path(digest, compressed: compressed)
            switch openForm(digest, compressed: compressed) {
            case .success(let handle):
                switch judge(opened: handle.io, digest: digest, compressed: compressed, size: expected) {
                case .sound: return handle
                case .unsound(_, let reason): flaws.append("'\(path)': \(reason)")
                case .absent: break
                }
            case .failure(let error) where error.code == .notFound: break
            case .failure(let error) where error.code == .permissionDenied: throw error
            case .failure(let error): flaws.append("'\(path)': \(BlobStore.flaw(error, path: path))")
            }
        }
        guard flaws.isEmpty else {
            throw CasketError(
                .corrupt, "blob \(digest) has no sound form: \(flaws.joined(separator: "; "))",
                path: layout.rawPath(digest))
        }
        throw CasketError(.notFound, "blob \(digest) is not in the store '\(root)'", path: layout.rawPath(digest))
    }
}
