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
    @_spi(Maintenance) public func verifyFile(
        at path: String, digest: Digest, buffer: UnsafeMutableRawBufferPointer
    ) throws(CasketError) -> Int64 {
        let handle = try FileHandle.openForReading(path)
        return try read(opened: handle, digest: digest, verify: true, buffer: buffer) { (_) throws(CasketError) in }
    }
}

/// Thin wrappers over the syscall layer for the maintenance tools (garbage collector, fsck) that live in
/// other modules: every system call still goes through `System/Syscalls.swift`.
extension StoreFiles {
    /// `lstat(2)`; `nil` when the file does not exist or cannot be examined.
    public static func status(_ path: String) -> FileStatus? {
        guard case .success(let st) = system_lstat(path) else { return nil }
        return FileStatus(st)
    }

    /// `unlink(2)`.
    public static func unlink(_ path: String) -> Result<Void, Errno> { system_unlink(path) }

    /// `rename(2)`, replacing the target.
    public static func rename(_ from: String, _ to: String) -> Result<Void, Errno> { system_rename(from, to) }

    /// Renames without replacing: `renameat2(RENAME_NOREPLACE)`, else `link` + `unlink` where the file
    /// system lacks the flag (NFS). `EEXIST` when the target exists.
    public static func renameNoReplace(_ from: String, _ to: String) -> Result<Void, Errno> {
        switch system_renameNoReplace(from, to) {
        case .failure(let errno) where AtomicFile.isUnsupported(errno):
            switch system_link(from, to) {
            case .success:
                _ = system_unlink(from)
                return .success(())
            case .failure(let errno): return .failure(errno)
            }
        case let other: return other
        }
    }

    /// Sets a file's mtime (and atime) to the file system's now.
    public static func touch(_ path: String) -> Result<Void, Errno> { system_touch(path) }

    /// Sets a file's atime and mtime to an explicit time, nanoseconds since the epoch.
    public static func setModificationTime(_ path: String, _ nanoseconds: Int64) -> Result<Void, Errno> {
        system_setTimes(path, accessNanoseconds: nanoseconds, modificationNanoseconds: nanoseconds)
    }

    /// Reads a small file whole.
    public static func read(_ path: String, limit: Int = 1 << 20) throws(CasketError) -> [UInt8] {
        try readSmallFile(path, limit: limit)
    }

    /// Writes `bytes` to `path` through a temp file in `tmpDirectory` and an atomic rename.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], tmpDirectory: String) throws(CasketError) {
        try writeFileAtomically(path, bytes, tmpDirectory: tmpDirectory, durable: true)
    }

    /// Creates a directory; an existing one is fine.
    public static func makeDirectory(_ path: String) throws(CasketError) {
        try Casket.makeDirectory(path, existingIsFine: true)
    }

    /// Flushes a directory after renames or unlinks in it.
    public static func syncDirectory(_ path: String) throws(CasketError) { try Casket.syncDirectory(path) }

    /// Calls `body` with each name in a directory (not `.` and `..`), without building a list.
    public static func forEachName(
        in path: String, _ body: (String) throws(CasketError) -> Void
    ) throws(CasketError) {
        try Casket.forEachEntry(in: path) { (name, _) throws(CasketError) in try body(name) }
    }

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

    /// Creates `path` holding `bytes` if it does not exist, atomically for every NFS client: the bytes go
    /// to a unique file beside it, which is `link`ed to `path` and then removed. The unique file's link
    /// count decides, so a lost NFS reply (`EEXIST` for a link that happened) still counts as created,
    /// and any other error is thrown, never taken for success. The lock and claim files use it.
    ///
    /// - Parameters:
    ///   - path: The file to create.
    ///   - bytes: Its content.
    ///   - sync: Flush the content before linking.
    /// - Returns: Whether this call created `path`, and the file system's now (the unique file's mtime).
    public static func createByLink(_ path: String, _ bytes: [UInt8], sync: Bool) throws(CasketError) -> (
        created: Bool, now: Int64
    ) {
        let unique = path + ".\(HostIdentity.host).\(HostIdentity.pid).\(HostIdentity.randomHex(bytes: 8)).tmp"
        let handle = try FileHandle.createExclusive(unique, mode: 0o666)
        defer { _ = system_unlink(unique) }
        let io = handle.io
        try typed { try bytes.withUnsafeBytes { try io.writeAll($0) } }
        if sync { try io.sync() }
        let now = try io.stat().mtimeNanoseconds
        let linked = system_link(unique, path)
        if (try? io.status().linkCount) == 2 { return (true, now) }
        switch linked {
        case .success, .failure(.fileExists): return (false, now)
        case .failure(let errno): throw CasketError.publish(unique, to: path, errno: errno)
        }
    }

    /// This host's wall clock, nanoseconds since the epoch.
    public static func wallClockNanoseconds() -> Int64 { system_wallClockNanoseconds() }
}
