#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FileRef {
    /// Sets the open file's atime and mtime to the file system's now (`futimens(fd, NULL)`): a blob form
    /// is freshened through the descriptor it was judged on, so the file trusted is the file freshened
    /// (docs/FORMAT.md 3.4).
    package func touch() -> Result<Void, Errno> {
        nothingOrErrno { futimens(fd, nil) }
    }
}
