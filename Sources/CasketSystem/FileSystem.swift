#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Path-based helpers for the paths a person names (a store root to create, the folder of a `get -o`
// file); everything inside a store goes through `Directory`.

/// Creates a directory (mode 0777 less the umask); an existing directory is fine when `existingIsFine`.
package func makeDirectory(_ path: String, existingIsFine: Bool) throws(CasketError) {
    switch system_mkdir(path, 0o777) {
    case .success: return
    case .failure(.fileExists) where existingIsFine:
        if case .success(let st) = system_stat(path), st.isDirectory { return }
        throw CasketError(.notARegularFile, "'\(path)' exists and is not a directory", path: path)
    case .failure(let errno): throw .mkdir(path, errno: errno)
    }
}

/// Flushes a directory, so that a rename or link into it survives a power loss.
package func syncDirectory(_ path: String) throws(CasketError) {
    let fd: CInt
    switch system_open(path, O_RDONLY | O_DIRECTORY) {
    case .success(let value): fd = value
    case .failure(let errno): throw .open(path, errno: errno)
    }
    defer { system_close(fd) }
    // Some file systems refuse fsync on a directory (EINVAL); the rename is then as durable as it gets.
    if case .failure(let errno) = system_fsync(fd), errno != .invalidArgument {
        throw .sync(path, errno: errno)
    }
}
