extension BlobStore {
    /// "Now" as the file system sees it: the mtime of a probe file created in the store's `tmp/`.
    ///
    /// Every time-based decision about the store's files (compaction's idle limit, garbage collection's
    /// grace) compares file mtimes, which the file server sets, with this rather than with the local clock,
    /// so that a host whose clock is wrong cannot make a young file look old.
    ///
    /// - Returns: Nanoseconds since the epoch.
    public func fileSystemNow() throws(CasketError) -> Int64 {
        let probe = try TempFile(in: directories.folder(.tmp))
        return try probe.handle.io.stat().mtimeNanoseconds
    }

    /// The folders of the store, for maintenance tools (docs/FORMAT.md, section 1).
    @_spi(Maintenance) public var blobsDirectory: String { layout.blobs }
    /// The temp-file folder.
    @_spi(Maintenance) public var tmpDirectory: String { layout.tmp }
    /// The index folder.
    @_spi(Maintenance) public var indexDirectory: String { layout.index }
    /// The garbage collector's folder (lock and reports).
    @_spi(Maintenance) public var gcDirectory: String { layout.gc }
    /// The compute-once claims folder.
    @_spi(Maintenance) public var claimsDirectory: String { layout.claims }
    /// The packs folder (docs/FORMAT.md 3.7).
    @_spi(Maintenance) public var packsDirectory: String { layout.packs }
    /// Where fsck moves corrupt blobs.
    @_spi(Maintenance) public var quarantineDirectory: String { layout.quarantine }

    /// The path of a blob in one form.
    @_spi(Maintenance) public func path(of digest: Digest, compressed: Bool) -> String {
        layout.path(digest, compressed: compressed)
    }

    /// Re-reads one blob file (the form its path names) and checks its hash.
    ///
    /// - Parameters:
    ///   - path: A blob file.
    ///   - digest: The hash its name gives.
    ///   - buffer: Scratch space, reused between calls.
    /// - Returns: The payload size.
    /// - Throws: ``CasketError/Code/corrupt`` naming the file with the expected and actual hash.
    ///   - chunks: Fed the payload in the same pass, to check or write its sidecar (docs/FORMAT.md 3.6).
    @_spi(Maintenance) public func verifyFile(
        at path: String, digest: Digest, buffer: UnsafeMutableRawBufferPointer, chunks: ChunkDigester? = nil
    ) throws(CasketError) -> Int64 {
        let (folder, name) = try files.locate(path)
        let handle = try folder.openForReading(name)
        return try read(opened: handle, digest: digest, verify: true, buffer: buffer) { (piece) throws(CasketError) in
            chunks?.update(piece)
        }
    }
}

/// What the maintenance tools need to know about this process and host; file effects go through
/// ``BlobStore/files``.
extension StoreFiles {
    /// Whether a process of this host (this PID namespace) exists: `kill(pid, 0)`. `EPERM` means it exists
    /// but belongs to another user.
    public static func processExists(_ pid: Int32) -> Bool {
        switch system_kill(pid, 0) {
        case .success: return true
        case .failure(.noSuchProcess): return false
        case .failure: return true
        }
    }

    /// The sanitised host name used in temp, index and lock file names.
    public static var hostName: String { HostIdentity.host }

    /// This process's id.
    public static var pid: Int32 { HostIdentity.pid }

    /// `count` random bytes as lowercase hex.
    public static func randomHex(bytes count: Int) -> String { HostIdentity.randomHex(bytes: count) }

    /// This host's wall clock, nanoseconds since the epoch.
    public static func wallClockNanoseconds() -> Int64 { system_wallClockNanoseconds() }
}
