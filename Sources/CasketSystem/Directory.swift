#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open directory, and the one way the store touches the files in it.
///
/// Every operation names one entry of this directory (a single path component, never a path), is made
/// relative to its descriptor (`openat`, `unlinkat`, `renameat`, ...), and never follows a symbolic link:
/// a link where the store expects a file or a folder is reported as ``CasketError/Code/unsafePath``, never
/// followed. So a link planted inside a store (a fan-out folder pointing at `/etc`, a blob pointing at a
/// private file) cannot make Casket read, write or delete outside it, and holding the descriptor means a
/// folder renamed or replaced while Casket works cannot redirect it either.
///
/// Only ``open(_:)`` takes a path, and it follows links in it: that path is one a person gave (a store
/// root, a cache to migrate), and the links in it are theirs.
package final class Directory: Sendable {
    /// The descriptor, open with `O_DIRECTORY`.
    package let fd: CInt
    /// The folder's path, for messages only: operations go through ``fd``.
    package let path: String

    private init(fd: CInt, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { system_close(fd) }

    /// Opens a folder named by a person; links in `path` are followed.
    package static func open(_ path: String) throws(CasketError) -> Directory {
        switch system_open(path, O_RDONLY | O_DIRECTORY) {
        case .success(let fd): return Directory(fd: fd, path: path)
        case .failure(.notDirectory):
            throw CasketError(.notARegularFile, "'\(path)' is not a directory", path: path, errno: .notDirectory)
        case .failure(let errno): throw .open(path, errno: errno)
        }
    }

    /// The path of an entry, for messages.
    package func path(of name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    /// Refuses anything but one plain path component: no `/`, not empty, `.` or `..`, no NUL.
    package func check(_ name: String) throws(CasketError) {
        if name.isEmpty || name == "." || name == ".." || name.utf8.contains(UInt8(ascii: "/"))
            || name.utf8.contains(0)
        {
            throw CasketError(
                .unsafePath, "'\(name)' is not a plain file name inside '\(path)'", path: path(of: name))
        }
    }

    // MARK: Folders

    /// Opens a sub-folder, never through a symbolic link.
    package func directory(_ name: String) throws(CasketError) -> Directory {
        try check(name)
        switch system_openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
        case .success(let sub): return Directory(fd: sub, path: path(of: name))
        case .failure(let errno) where errno == .tooManySymbolicLinks || errno == .notDirectory:
            throw notA("a directory", name, errno: errno)
        case .failure(let errno): throw .open(path(of: name), errno: errno)
        }
    }

    /// ``directory(_:)``, or `nil` when nothing has the name: for lookups that miss more often than they
    /// hit (the fan-out folders of a store whose small payloads are packed), where building the error of
    /// every miss cost more than the `openat` itself.
    package func directoryIfPresent(_ name: String) throws(CasketError) -> Directory? {
        try check(name)
        switch system_openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) {
        case .success(let sub): return Directory(fd: sub, path: path(of: name))
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let errno) where errno == .tooManySymbolicLinks || errno == .notDirectory:
            throw notA("a directory", name, errno: errno)
        case .failure(let errno): throw .open(path(of: name), errno: errno)
        }
    }

    /// Creates a sub-folder if it is missing (the umask applies to `mode`) and opens it. An existing
    /// entry of that name must be a real folder, not a link to one.
    ///
    /// - Returns: The folder, and whether this call created it.
    package func makeDirectory(_ name: String, mode: UInt32 = 0o777) throws(CasketError) -> (Directory, created: Bool) {
        try check(name)
        switch system_mkdirat(fd, name, mode_t(mode)) {
        case .success: return (try directory(name), true)
        case .failure(.fileExists): return (try directory(name), false)
        case .failure(let errno): throw .mkdir(path(of: name), errno: errno)
        }
    }

    /// Flushes the folder, so that a rename, link or unlink in it survives a power loss.
    package func sync() throws(CasketError) {
        // Some file systems refuse fsync on a directory (EINVAL); the rename is then as durable as it gets.
        if case .failure(let errno) = system_fsync(fd), errno != .invalidArgument {
            throw .sync(path, errno: errno)
        }
    }

    /// The folder's own status (`fstat`).
    package func status() throws(CasketError) -> FileStatus {
        switch system_fstat(fd) {
        case .success(let st): return FileStatus(st)
        case .failure(let errno): throw .stat(path, errno: errno)
        }
    }

    /// Calls `body` for each entry (not `.` and `..`) with its type when the listing tells it (`nil` when
    /// the file system does not: `lstat` it).
    package func forEachEntry(
        _ body: (_ name: String, _ kind: FileStatus.Kind?) throws(CasketError) -> Void
    ) throws(CasketError) {
        let result: Result<Void, Errno>
        do {
            result = try system_forEachDirectoryEntry(inDirectory: fd) { name, type in
                try body(name, Directory.kind(ofEntryType: type))
            }
        } catch let error as CasketError {
            throw error
        } catch {
            throw CasketError(.io, "listing '\(path)' failed: \(error)", path: path)
        }
        if case .failure(let errno) = result { throw .list(path, errno: errno) }
    }

    private static func kind(ofEntryType type: UInt8) -> FileStatus.Kind? {
        switch Int32(type) {
        case Int32(DT_REG): .regular
        case Int32(DT_DIR): .directory
        case Int32(DT_LNK): .symbolicLink
        case Int32(DT_FIFO): .fifo
        case Int32(DT_SOCK): .socket
        case Int32(DT_CHR): .characterDevice
        case Int32(DT_BLK): .blockDevice
        default: nil
        }
    }

    // MARK: Files

    /// Opens a regular file for reading. A link, FIFO, device or folder of that name is refused (the open
    /// is non-blocking until `fstat` has said the file is regular, so a FIFO cannot hang the caller).
    package func openForReading(_ name: String) throws(CasketError) -> FileHandle {
        try check(name)
        switch system_openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) {
        case .success(let file):
            let handle = FileHandle(fd: file, path: path(of: name))
            try requireRegular(handle, name)
            if case .failure(let errno) = system_clearNonBlocking(file) { throw .open(handle.path, errno: errno) }
            return handle
        case .failure(.tooManySymbolicLinks): throw notA("a regular file", name, errno: .tooManySymbolicLinks)
        case .failure(let errno): throw .open(path(of: name), errno: errno)
        }
    }

    /// Creates a file that must not exist yet (`O_CREAT | O_EXCL`, which never follows a link), open for
    /// reading and writing. The umask applies to `mode`.
    package func createExclusive(_ name: String, mode: UInt32 = 0o666) throws(CasketError) -> FileHandle {
        try check(name)
        switch system_openat(fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode_t(mode)) {
        case .success(let file): return FileHandle(fd: file, path: path(of: name))
        case .failure(let errno): throw .open(path(of: name), forWriting: true, errno: errno)
        }
    }

    /// Opens a regular file for appending, creating it when `create` (the umask applies to `mode`).
    package func openForAppending(_ name: String, create: Bool, mode: UInt32 = 0o666) throws(CasketError)
        -> FileHandle
    {
        try check(name)
        let flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | (create ? O_CREAT : 0)
        switch system_openat(fd, name, flags, mode_t(mode)) {
        case .success(let file):
            let handle = FileHandle(fd: file, path: path(of: name))
            try requireRegular(handle, name)
            if case .failure(let errno) = system_clearNonBlocking(file) {
                throw .open(handle.path, forWriting: true, errno: errno)
            }
            return handle
        case .failure(.tooManySymbolicLinks): throw notA("a regular file", name, errno: .tooManySymbolicLinks)
        case .failure(let errno): throw .open(path(of: name), forWriting: true, errno: errno)
        }
    }

    /// `lstat` of an entry: a link is described, never followed.
    package func status(_ name: String) -> Result<FileStatus, Errno> {
        guard (try? check(name)) != nil else { return .failure(.invalidArgument) }
        return system_lstatat(fd, name).map(FileStatus.init)
    }

    /// `lstat` of an entry, `nil` when it does not exist; other failures are thrown.
    package func statusIfPresent(_ name: String) throws(CasketError) -> FileStatus? {
        try check(name)
        switch system_lstatat(fd, name) {
        case .success(let st): return FileStatus(st)
        case .failure(.noSuchFileOrDirectory): return nil
        case .failure(let errno): throw .stat(path(of: name), errno: errno)
        }
    }

    /// Removes an entry (a link is removed, not what it points to).
    package func remove(_ name: String) -> Result<Void, Errno> {
        guard (try? check(name)) != nil else { return .failure(.invalidArgument) }
        return system_unlinkat(fd, name)
    }

    /// Removes an empty sub-folder.
    package func removeDirectory(_ name: String) -> Result<Void, Errno> {
        guard (try? check(name)) != nil else { return .failure(.invalidArgument) }
        return system_unlinkat(fd, name, directoryEntry: true)
    }

    /// Renames an entry into `target` (possibly this folder), replacing what `newName` names there.
    package func rename(_ name: String, to target: Directory, as newName: String) -> Result<Void, Errno> {
        guard (try? check(name)) != nil, (try? target.check(newName)) != nil else { return .failure(.invalidArgument) }
        return system_renameat(fd, name, target.fd, newName)
    }

    /// Renames without ever replacing: `renameat2(RENAME_NOREPLACE)`. `EEXIST` when `newName` exists;
    /// `EINVAL` or `ENOSYS` where the file system or kernel lacks the flag (NFS).
    package func renameNoReplace(_ name: String, to target: Directory, as newName: String) -> Result<Void, Errno> {
        guard (try? check(name)) != nil, (try? target.check(newName)) != nil else { return .failure(.invalidArgument) }
        return system_renameatNoReplace(fd, name, target.fd, newName)
    }

    /// Adds a hard link `newName` in `target` to the entry `name` (never to what a link points to).
    package func link(_ name: String, to target: Directory, as newName: String) -> Result<Void, Errno> {
        guard (try? check(name)) != nil, (try? target.check(newName)) != nil else { return .failure(.invalidArgument) }
        return system_linkat(fd, name, target.fd, newName)
    }

    /// Sets an entry's atime and mtime to the file system's now (git's freshen), or to `nanoseconds`.
    package func touch(_ name: String, nanoseconds: Int64? = nil) -> Result<Void, Errno> {
        guard (try? check(name)) != nil else { return .failure(.invalidArgument) }
        return system_touchat(fd, name, nanoseconds: nanoseconds)
    }

    // MARK: Helpers

    private func requireRegular(_ handle: borrowing FileHandle, _ name: String) throws(CasketError) {
        let status = try handle.io.status()
        if status.kind != .regular {
            throw CasketError(
                .notARegularFile, "'\(path(of: name))' is \(status.kind), not a regular file", path: path(of: name))
        }
    }

    /// The error for an entry that is not the kind expected, naming a link as unsafe.
    private func notA(_ expected: String, _ name: String, errno: Errno) -> CasketError {
        let found = status(name)
        if case .success(let status) = found, status.kind == .symbolicLink {
            return CasketError(
                .unsafePath,
                "'\(path(of: name))' is a symbolic link where \(expected) is expected; Casket never follows links inside the folders it manages",
                path: path(of: name))
        }
        if case .success(let status) = found {
            return CasketError(
                .notARegularFile, "'\(path(of: name))' is \(status.kind), not \(expected)", path: path(of: name),
                errno: errno)
        }
        return .open(path(of: name), errno: errno)
    }
}

extension Directory {
    /// Reads a whole small regular file of this folder (configuration, lock, report); refuses files over
    /// `limit` bytes, links and anything not regular.
    package func readSmallFile(_ name: String, limit: Int) throws(CasketError) -> [UInt8] {
        let handle = try openForReading(name)
        let st = try handle.io.status()
        guard st.size <= Int64(limit) else {
            throw CasketError(
                .invalidArgument, "'\(handle.path)' is \(st.size) bytes, more than the \(limit) expected",
                path: handle.path)
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.size) + 1)
        let io = handle.io
        let n = try typed { try bytes.withUnsafeMutableBytes { try io.readFully(into: $0) } }
        bytes.removeLast(bytes.count - n)
        return bytes
    }
}

extension Directory {
    /// Creates `name` holding `bytes` if it does not exist, atomically for every NFS client: the bytes go
    /// to a unique file beside it (`<name>.<host>.<pid>.<random>.tmp`), which is linked to `name` and then
    /// removed. The unique file's link count decides, so a lost NFS reply (`EEXIST` for a link that
    /// happened) still counts as created, and any other error is thrown, never taken for success. The
    /// lock and claim files use it.
    ///
    /// - Returns: Whether this call created `name`, and the file system's now (the unique file's mtime).
    package func createByLink(_ name: String, _ bytes: [UInt8], sync: Bool) throws(CasketError) -> (
        created: Bool, now: Int64
    ) {
        let unique = name + ".\(HostIdentity.host).\(HostIdentity.pid).\(HostIdentity.randomHex(bytes: 8)).tmp"
        let handle = try createExclusive(unique, mode: 0o666)
        defer { _ = remove(unique) }
        let io = handle.io
        try typed { try bytes.withUnsafeBytes { try io.writeAll($0) } }
        if sync { try io.sync() }
        let now = try io.status().mtimeNanoseconds
        let linked = link(unique, to: self, as: name)
        if (try? io.status().linkCount) == 2 { return (true, now) }
        switch linked {
        case .success, .failure(.fileExists): return (false, now)
        case .failure(let errno): throw CasketError.publish(path(of: unique), to: path(of: name), errno: errno)
        }
    }

    /// Writes `bytes` to `name` through a unique temp file in this folder and a rename over `name`.
    package func writeAtomically(_ name: String, _ bytes: [UInt8], durable: Bool) throws(CasketError) {
        var file = try AtomicFile(in: self)
        let out = file.io
        try typed { try bytes.withUnsafeBytes { try out.writeAll($0) } }
        _ = try file.publish(to: self, as: name, .replace, durable: durable)
    }
}

extension Directory {
    /// Reads at most `limit` bytes of an entry if it is a regular file: `nil` for a link, FIFO, device or
    /// folder under the name (never opened through, never blocked on); `.noSuchFileOrDirectory` when absent.
    package func readIfRegular(_ name: String, limit: Int) -> Result<[UInt8]?, Errno> {
        guard (try? check(name)) != nil else { return .failure(.invalidArgument) }
        let fd: CInt
        switch system_openat(self.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) {
        case .success(let value): fd = value
        case .failure(.tooManySymbolicLinks): return .success(nil)
        case .failure(let errno): return .failure(errno)
        }
        let handle = FileHandle(fd: fd, path: path(of: name))
        switch system_fstat(fd) {
        case .success(let st) where !st.isRegularFile: return .success(nil)
        case .success: break
        case .failure(let errno): return .failure(errno)
        }
        var bytes = [UInt8](repeating: 0, count: limit)
        let io = handle.io
        do throws(CasketError) {
            let n = try typed { try bytes.withUnsafeMutableBytes { try io.readFully(into: $0) } }
            return .success(Array(bytes[..<n]))
        } catch {
            return .failure(error.errno ?? .invalidArgument)
        }
    }
}
