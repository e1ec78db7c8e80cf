import CCasketShims

#if canImport(Glibc)
package import Glibc
#elseif canImport(Darwin)
package import Darwin
#endif

// The `*at` system calls: every one names an entry relative to an open directory, never a path from the
// current directory, so that ``Directory`` can refuse to follow symbolic links in one place.

package func system_openat(_ directory: CInt, _ name: String, _ flags: CInt, _ mode: mode_t = 0) -> Result<
    CInt, Errno
> {
    valueOrErrno { openat(directory, name, flags | O_CLOEXEC, mode) }
}

/// `fstatat(2)` with `AT_SYMLINK_NOFOLLOW`: a symbolic link is described, never followed.
package func system_lstatat(_ directory: CInt, _ name: String) -> Result<stat, Errno> {
    var st = stat()
    return nothingOrErrno { fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) }.map { st }
}

package func system_unlinkat(_ directory: CInt, _ name: String, directoryEntry: Bool = false) -> Result<Void, Errno> {
    nothingOrErrno { unlinkat(directory, name, directoryEntry ? AT_REMOVEDIR : 0) }
}

package func system_renameat(_ fromDirectory: CInt, _ from: String, _ toDirectory: CInt, _ to: String) -> Result<
    Void, Errno
> {
    nothingOrErrno { renameat(fromDirectory, from, toDirectory, to) }
}

package func system_renameatNoReplace(_ fromDirectory: CInt, _ from: String, _ toDirectory: CInt, _ to: String)
    -> Result<Void, Errno>
{
    nothingOrErrno { casket_rename_noreplace(fromDirectory, from, toDirectory, to) }
}

/// `linkat(2)` without `AT_SYMLINK_FOLLOW`: a link to a symbolic link is a link to the link itself.
package func system_linkat(_ fromDirectory: CInt, _ from: String, _ toDirectory: CInt, _ to: String) -> Result<
    Void, Errno
> {
    nothingOrErrno { linkat(fromDirectory, from, toDirectory, to, 0) }
}

package func system_mkdirat(_ directory: CInt, _ name: String, _ mode: mode_t) -> Result<Void, Errno> {
    nothingOrErrno { mkdirat(directory, name, mode) }
}

/// `utimensat(2)` with `AT_SYMLINK_NOFOLLOW`: `nil` sets both times to the file system's now (git's
/// freshen); otherwise atime and mtime to `nanoseconds` since the epoch.
package func system_touchat(_ directory: CInt, _ name: String, nanoseconds: Int64? = nil) -> Result<Void, Errno> {
    guard let nanoseconds else {
        return nothingOrErrno { utimensat(directory, name, nil, AT_SYMLINK_NOFOLLOW) }
    }
    let time = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var times = [time, time]
    return nothingOrErrno { utimensat(directory, name, &times, AT_SYMLINK_NOFOLLOW) }
}

/// Clears `O_NONBLOCK` on a descriptor opened with it (regular files opened that way to avoid blocking on a
/// FIFO, once `fstat` said they are regular).
package func system_clearNonBlocking(_ fd: CInt) -> Result<Void, Errno> {
    valueOrErrno { fcntl(fd, F_GETFL) }.flatMap { flags in nothingOrErrno { fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) } }
}

/// Lists the entries of an open directory (not `.` and `..`), without building an array; the descriptor
/// stays open and usable (the listing works on a duplicate).
package func system_forEachDirectoryEntry(
    inDirectory fd: CInt,
    _ body: (_ name: String, _ type: UInt8) throws -> Void
) throws -> Result<Void, Errno> {
    let duplicate: CInt
    switch valueOrErrno({ openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) {
    case .success(let value): duplicate = value
    case .failure(let errno): return .failure(errno)
    }
    guard let dir = fdopendir(duplicate) else {
        let errno = Errno(rawValue: casket_errno())
        system_close(duplicate)
        return .failure(errno)
    }
    defer { closedir(dir) }
    while let entry = readdir(dir) {
        let (name, type) = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
            pointer.withMemoryRebound(to: CChar.self, capacity: 256) { (String(cString: $0), entry.pointee.d_type) }
        }
        if name == "." || name == ".." { continue }
        try body(name, type)
    }
    return .success(())
}
