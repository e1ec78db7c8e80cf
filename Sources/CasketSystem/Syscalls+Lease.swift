#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The system calls the lease files need beyond Syscalls.swift: reading a symlink (the PID namespace is
// the target of /proc/self/ns/pid) and reading a small file without following a symlink or blocking on
// a FIFO that someone left under a lease's name.

/// `readlink(2)`; the target as a string.
package func system_readlink(_ path: String) -> Result<String, Errno> {
    var buffer = [CChar](repeating: 0, count: 512)
    let count = valueOrErrno { readlink(path, &buffer, buffer.count - 1) }
    return count.map { n in
        buffer.withUnsafeBufferPointer { raw in
            String(decoding: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: raw[..<n])), as: UTF8.self)
        }
    }
}

/// Reads at most `limit` bytes of a regular file, opened with `O_NOFOLLOW | O_NONBLOCK`: a symlink,
/// FIFO, device or directory under the name is never opened through (`nil`), a missing file is
/// `.noSuchFileOrDirectory`.
package func system_readRegularFile(_ path: String, limit: Int) -> Result<[UInt8]?, Errno> {
    let fd: CInt
    switch system_open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) {
    case .success(let value): fd = value
    case .failure(let errno) where errno.rawValue == ELOOP: return .success(nil)
    case .failure(let errno): return .failure(errno)
    }
    defer { system_close(fd) }
    switch system_fstat(fd) {
    case .success(let st) where !st.isRegularFile: return .success(nil)
    case .success: break
    case .failure(let errno): return .failure(errno)
    }
    var bytes = [UInt8](repeating: 0, count: limit)
    var filled = 0
    while filled < limit {
        let n = bytes.withUnsafeMutableBytes { raw in
            system_read(fd, UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
        }
        switch n {
        case .success(0): return .success(Array(bytes[..<filled]))
        case .success(let count): filled += count
        case .failure(let errno): return .failure(errno)
        }
    }
    return .success(bytes)
}
