extension BlobStore {
    /// Writes a blob's payload to a file, publishing it only after its hash has been verified.
    ///
    /// The bytes go to a temp file beside `path` that is renamed over `path` at the end, so `path` never
    /// holds a partial or unverified payload.
    ///
    /// - Parameters:
    ///   - digest: The blob.
    ///   - size: The payload size when known (an index entry's `blobs`).
    ///   - path: The destination file, replaced if it exists.
    /// - Returns: The payload size.
    @discardableResult
    public func export(_ digest: Digest, size: Int64? = nil, toFileAt path: String) throws(CasketError) -> Int64 {
        // A form found corrupt gives way to a sound twin: the export starts over in a new temp file.
        try withFallback(digest, size: size) { (excluding) throws(CasketError) in
            try exportStream(toFileAt: path) { (sink) throws(CasketError) in
                try read(digest, size: size, excluding: excluding, verify: true, to: sink)
            }
        }
    }

    /// Streams a blob's payload, verified at the end, to an open descriptor (for example 1, standard
    /// output). On a corrupt blob the bytes already written stay written and the error is thrown.
    @discardableResult
    public func export(_ digest: Digest, toDescriptor fd: Int32, name: String) throws(CasketError) -> Int64 {
        let out = FileRef(fd: fd, path: name)
        return try read(digest) { (bytes) throws(CasketError) in try out.writeAll(bytes) }
    }

    /// Runs `produce` with a sink into a temp file beside `path`, then renames it over `path`; on any
    /// error the temp file is removed and `path` is untouched.
    func exportStream(
        toFileAt path: String,
        _ produce: ((UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Int64
    ) throws(CasketError) -> Int64 {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let tempPath = (directory.isEmpty ? "" : directory + "/") + ".casket-\(HostIdentity.randomHex(bytes: 8)).tmp"
        let handle = try FileHandle.createExclusive(tempPath, mode: 0o666)
        do throws(CasketError) {
            let out = handle.io
            let size = try produce { (bytes) throws(CasketError) in try out.writeAll(bytes) }
            if durable { try out.sync() }
            if case .failure(let errno) = system_rename(tempPath, path) {
                throw CasketError.publish(tempPath, to: path, errno: errno)
            }
            return size
        } catch {
            _ = system_unlink(tempPath)
            throw error
        }
    }
}
