#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Small file-system helpers built on the syscall layer, throwing CasketError that names the path.

/// Reads a whole small file (configuration, lock, report); refuses files over `limit` bytes.
package func readSmallFile(_ path: String, limit: Int) throws(CasketError) -> [UInt8] {
    let handle = try FileHandle.openForReading(path)
    let st = try handle.io.stat()
    guard st.size <= Int64(limit) else {
        throw CasketError(
            .invalidArgument, "'\(path)' is \(st.size) bytes, more than the \(limit) expected", path: path)
    }
    var bytes = [UInt8](repeating: 0, count: Int(st.size) + 1)
    let io = handle.io
    let n = try typed { try bytes.withUnsafeMutableBytes { try io.readFully(into: $0) } }
    bytes.removeLast(bytes.count - n)
    return bytes
}

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

/// Writes `bytes` to `path` through a temp file in `tmpDirectory` and an atomic rename (replacing).
package func writeFileAtomically(_ path: String, _ bytes: [UInt8], tmpDirectory: String, durable: Bool)
    throws(CasketError)
{
    var temp = try TempFile(in: tmpDirectory)
    let out = temp.handle.io
    try typed { try bytes.withUnsafeBytes { try out.writeAll($0) } }
    if durable { try out.sync() }
    if case .failure(let errno) = system_rename(temp.path, path) {
        throw CasketError.publish(temp.path, to: path, errno: errno)
    }
    temp.markGone()
}

/// Calls `body` for each entry of a directory, with a clear error when the directory cannot be listed.
package func forEachEntry(
    in path: String,
    _ body: (_ name: String, _ isDirectory: Bool?) throws(CasketError) -> Void
) throws(CasketError) {
    let result: Result<Void, Errno>
    do {
        result = try system_forEachDirectoryEntry(path) { name, type in
            let isDirectory: Bool? = type == UInt8(DT_DIR) ? true : (type == UInt8(DT_UNKNOWN) ? nil : false)
            try body(name, isDirectory)
        }
    } catch let error as CasketError {
        throw error
    } catch {
        throw CasketError(.io, "listing '\(path)' failed: \(error)", path: path)
    }
    if case .failure(let errno) = result { throw .list(path, errno: errno) }
}
