extension BlobStore {
    /// Writes a blob's payload to a file, publishing it only after its hash has been verified.
    ///
    /// A regular `path` (or none) gets a temp file beside it that is renamed over it at the end, so it never
    /// holds a partial or unverified payload; a device or FIFO is written through; a symlink, a directory
    /// or a socket is refused (``ExportFile``).
    ///
    /// - Parameters:
    ///   - digest: The blob.
    ///   - path: The destination: a regular file (replaced), a device or FIFO (written through).
    /// - Returns: The payload size.
    @discardableResult
    public func export(_ digest: Digest, size: Int64? = nil, toFileAt path: String) throws(CasketError) -> Int64 {
        // A device or FIFO cannot take back bytes written: one pass, a corrupt form reported as on stdout.
        if try ExportFile.method(for: path) == .writeThrough {
            return try exportStream(toFileAt: path) { (sink) throws(CasketError) in
                try read(digest, size: size, excluding: nil, verify: true, to: sink)
            }
        }
        // A form found corrupt gives way to a sound twin: the export starts over in a new temp file.
        return try withFallback(digest, size: size) { (excluding) throws(CasketError) in
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

    /// Runs `produce` with a sink into `path`, as ``ExportFile`` decides by what `path` is: a regular file
    /// (or nothing) is replaced by rename once verified, a device or FIFO written through, anything else
    /// refused.
    func exportStream(
        toFileAt path: String,
        _ produce: ((UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) -> Int64
    ) throws(CasketError) -> Int64 {
        try ExportFile.write(path, durable: durable, produce)
    }
}
