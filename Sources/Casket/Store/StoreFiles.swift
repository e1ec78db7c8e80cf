/// Every file effect of the maintenance tools (garbage collector, fsck, locks), by store path, through the
/// store's open folders: a path is refused unless it lies below the store's root, and no component of it
/// is followed if it is a symbolic link (docs/FORMAT.md, section 1.1).
///
/// The tools keep thinking in paths (reports and messages name them), while every call is made
/// relative to a folder descriptor, so a link planted as `tmp/`, a fan-out folder or `gc/` makes the call
/// fail instead of acting on the folder it points to.
@_spi(Maintenance) public struct StoreFiles: Sendable {
    let root: String
    let directories: StoreDirectories

    /// The folder holding a store path, opened without following links, and the entry's name in it.
    func locate(_ path: String) throws(CasketError) -> (Directory, String) {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        guard path.hasPrefix(prefix) else {
            throw CasketError(.unsafePath, "'\(path)' is outside the store '\(root)'", path: path)
        }
        let parts = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false).map(
            String.init)
        guard let name = parts.last, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw CasketError(.unsafePath, "'\(path)' is not a plain path inside the store '\(root)'", path: path)
        }
        var folder = directories.root
        for (depth, part) in parts.dropLast().enumerated() {
            if depth == 0, let known = StoreDirectories.Folder(rawValue: part) {
                folder = try directories.folder(known)
            } else if depth == 1, parts[0] == StoreDirectories.Folder.blobs.rawValue,
                let fanout = try directories.fanout(named: part)
            {
                folder = fanout
            } else {
                folder = try folder.directory(part)
            }
        }
        return (folder, name)
    }

    private func attempt<T>(_ path: String, _ body: (Directory, String) -> Result<T, Errno>) -> Result<T, Errno> {
        do {
            let (folder, name) = try locate(path)
            return body(folder, name)
        } catch {
            return .failure(error.errno ?? .invalidArgument)
        }
    }

    /// `lstat`; `nil` when the file does not exist, cannot be examined, or lies behind a link.
    public func status(_ path: String) -> FileStatus? {
        try? attempt(path) { folder, name in folder.status(name) }.get()
    }

    /// Removes a file (a link itself, never its target).
    public func unlink(_ path: String) -> Result<Void, Errno> { attempt(path) { $0.remove($1) } }

    /// Renames within the store, replacing the target.
    public func rename(_ from: String, _ to: String) -> Result<Void, Errno> {
        attempt(from) { source, name in attempt(to) { target, newName in source.rename(name, to: target, as: newName) }
        }
    }

    /// Renames without replacing: `renameat2(RENAME_NOREPLACE)`, else `link` + `unlink` where the file
    /// system lacks the flag (NFS). `EEXIST` when the target exists.
    public func renameNoReplace(_ from: String, _ to: String) -> Result<Void, Errno> {
        attempt(from) { source, name in
            attempt(to) { target, newName in
                switch source.renameNoReplace(name, to: target, as: newName) {
                case .failure(let errno) where AtomicFile.isUnsupported(errno):
                    return source.link(name, to: target, as: newName).map { _ = source.remove(name) }
                case let other: return other
                }
            }
        }
    }

    /// Sets a file's mtime (and atime) to the file system's now.
    public func touch(_ path: String) -> Result<Void, Errno> { attempt(path) { $0.touch($1) } }

    /// Sets a file's atime and mtime to an explicit time, nanoseconds since the epoch.
    public func setModificationTime(_ path: String, _ nanoseconds: Int64) -> Result<Void, Errno> {
        attempt(path) { $0.touch($1, nanoseconds: nanoseconds) }
    }

    /// Reads a small regular file whole.
    public func read(_ path: String, limit: Int = 1 << 20) throws(CasketError) -> [UInt8] {
        let (folder, name) = try locate(path)
        return try folder.readSmallFile(name, limit: limit)
    }

    /// Writes `bytes` to `path` through a unique temp file beside it and an atomic rename.
    public func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(CasketError) {
        let (folder, name) = try locate(path)
        try folder.writeAtomically(name, bytes, durable: true)
    }

    /// Creates a folder (the umask applies); an existing real folder is fine, a link is refused.
    public func makeDirectory(_ path: String) throws(CasketError) {
        let (folder, name) = try locate(path)
        _ = try folder.makeDirectory(name)
    }

    /// Flushes a folder after renames or unlinks in it.
    public func syncDirectory(_ path: String) throws(CasketError) {
        let (parent, name) = try locate(path)
        try parent.directory(name).sync()
    }

    /// Calls `body` with each name in a folder (not `.` and `..`) and its type when the listing tells
    /// it, without building a list. A link in the place of the folder is refused.
    public func forEachEntry(
        in path: String, _ body: (String, FileStatus.Kind?) throws(CasketError) -> Void
    ) throws(CasketError) {
        let (parent, name) = try locate(path)
        try parent.directory(name).forEachEntry(body)
    }

    /// Calls `body` with each name in a folder (not `.` and `..`), without building a list. A link in the
    /// place of the folder is refused.
    public func forEachName(in path: String, _ body: (String) throws(CasketError) -> Void) throws(CasketError) {
        try forEachEntry(in: path) { (name, _) throws(CasketError) in try body(name) }
    }

    /// Creates `path` holding `bytes` if it does not exist, atomically for every NFS client (see
    /// `Directory.createByLink`). The lock and claim files use it.
    ///
    /// - Returns: Whether this call created `path`, and the file system's now.
    public func createByLink(_ path: String, _ bytes: [UInt8], sync: Bool) throws(CasketError) -> (
        created: Bool, now: Int64
    ) {
        let (folder, name) = try locate(path)
        return try folder.createByLink(name, bytes, sync: sync)
    }
}

extension BlobStore {
    /// File effects by store path for the maintenance tools, none following a link (see ``StoreFiles``).
    @_spi(Maintenance) public var files: StoreFiles { StoreFiles(root: root, directories: directories) }
}

extension BlobStore {
    /// The store's own folders (`blobs`, `tmp`, `index`, ...) whose names hold something other than a real
    /// folder, each as "'path' is a symbolic link": what GC and fsck report and never follow.
    @_spi(Maintenance) public func unsafeFolders() -> [String] {
        StoreDirectories.Folder.allCases.compactMap { folder in
            guard case .success(let status) = directories.root.status(folder.rawValue), !status.isDirectory else {
                return nil
            }
            return "'\(directories.root.path(of: folder.rawValue))' is \(status.kind), not a folder (never followed)"
        }
    }
}
