#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FileHandle {
    /// Opens a store file for reading only if its own entry is a regular file.
    ///
    /// A symlink is never followed (`O_NOFOLLOW`: it could name a file outside the store), and a FIFO or
    /// a device never blocks the open (`O_NONBLOCK`) and is refused once `fstat` shows what it is.
    ///
    /// - Throws: ``CasketError/Code/notARegularFile`` naming the path and what it is; ``CasketError/Code/notFound``
    ///   when it vanished.
    static func openRegularFileForReading(_ path: String) throws(CasketError) -> FileHandle {
        let handle: FileHandle
        switch system_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) {
        case .success(let fd): handle = FileHandle(fd: fd, path: path)
        case .failure(let errno) where errno.rawValue == ELOOP:
            throw CasketError(.notARegularFile, "'\(path)' is a symbolic link, not a regular file", path: path)
        case .failure(let errno) where errno.rawValue == ENXIO || errno.rawValue == ENODEV:
            throw CasketError(
                .notARegularFile, "'\(path)' is a socket or device, not a regular file", path: path, errno: errno)
        case .failure(let errno): throw .open(path, errno: errno)
        }
        let st = try handle.io.stat()
        guard st.isRegularFile else {
            throw CasketError(
                .notARegularFile, "'\(path)' is \(FileKind.describe(st.st_mode)), not a regular file", path: path)
        }
        return handle
    }
}

/// Words for what a directory entry is, for messages about debris.
enum FileKind {
    /// `a directory`, `a symbolic link`, `a FIFO`, ...
    static func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "an unknown kind of file"
        }
    }
}
