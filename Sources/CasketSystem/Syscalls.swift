import CCasketShims

#if canImport(Glibc)
package import Glibc
#elseif canImport(Darwin)
package import Darwin
#endif

// Every system call Casket makes goes through this file: one place that retries EINTR and turns the C
// convention (-1 and errno) into `Result<_, Errno>`.

@inline(__always)
package func valueOrErrno<I: FixedWidthInteger>(
    retryOnInterrupt: Bool = true,
    _ call: () -> I
) -> Result<I, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let err = Errno(rawValue: casket_errno())
        if retryOnInterrupt && err == .interrupted { continue }
        return .failure(err)
    }
}

@inline(__always)
package func nothingOrErrno<I: FixedWidthInteger>(
    retryOnInterrupt: Bool = true,
    _ call: () -> I
) -> Result<Void, Errno> {
    valueOrErrno(retryOnInterrupt: retryOnInterrupt, call).map { _ in () }
}

package func system_open(_ path: String, _ flags: CInt, _ mode: mode_t = 0) -> Result<CInt, Errno> {
    valueOrErrno { open(path, flags | O_CLOEXEC, mode) }
}

package func system_close(_ fd: CInt) {
    // close(2) must not be retried on EINTR on Linux: the descriptor is released either way.
    _ = close(fd)
}

package func system_read(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno { read(fd, buffer.baseAddress, buffer.count) }
}

package func system_pread(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int64) -> Result<Int, Errno> {
    valueOrErrno { pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
}

package func system_write(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) -> Result<Int, Errno> {
    valueOrErrno { write(fd, buffer.baseAddress, buffer.count) }
}

/// Copies up to `count` bytes in the kernel from `input` at `offset` (advanced) to `output`'s position.
package func system_copyFileRange(_ input: CInt, _ offset: inout Int64, _ output: CInt, _ count: Int) -> Result<
    Int, Errno
> {
    var position = offset
    let result = valueOrErrno { casket_copy_file_range(input, &position, output, UInt(count)) }
    if case .success = result { offset = position }
    return result.map { Int($0) }
}

package func system_syncfs(_ fd: CInt) -> Result<Void, Errno> {
    nothingOrErrno { casket_syncfs(fd) }
}

/// Maps a file read-only and shared (`mmap(2)`), or fails with the errno.
package func system_mmapReadOnly(_ fd: CInt, _ length: Int) -> Result<UnsafeRawPointer, Errno> {
    let pointer = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0)
    if pointer == MAP_FAILED || pointer == nil { return .failure(Errno(rawValue: casket_errno())) }
    return .success(UnsafeRawPointer(pointer!))
}

package func system_munmap(_ pointer: UnsafeRawPointer, _ length: Int) {
    _ = munmap(UnsafeMutableRawPointer(mutating: pointer), length)
}

package func system_fsync(_ fd: CInt) -> Result<Void, Errno> {
    nothingOrErrno { fsync(fd) }
}

package func system_fdatasync(_ fd: CInt) -> Result<Void, Errno> {
    nothingOrErrno { fdatasync(fd) }
}

package func system_startWriteback(_ fd: CInt, _ offset: Int64, _ length: Int64) {
    _ = casket_start_writeback(fd, offset, length)
}

package func system_fstat(_ fd: CInt) -> Result<stat, Errno> {
    var st = stat()
    return nothingOrErrno { fstat(fd, &st) }.map { st }
}

package func system_stat(_ path: String) -> Result<stat, Errno> {
    var st = stat()
    return nothingOrErrno { stat(path, &st) }.map { st }
}

package func system_lstat(_ path: String) -> Result<stat, Errno> {
    var st = stat()
    return nothingOrErrno { lstat(path, &st) }.map { st }
}

package func system_fchmod(_ fd: CInt, _ mode: mode_t) -> Result<Void, Errno> {
    nothingOrErrno { fchmod(fd, mode) }
}

package func system_mkdir(_ path: String, _ mode: mode_t) -> Result<Void, Errno> {
    nothingOrErrno { mkdir(path, mode) }
}

package func system_unlink(_ path: String) -> Result<Void, Errno> {
    nothingOrErrno { unlink(path) }
}

package func system_rename(_ from: String, _ to: String) -> Result<Void, Errno> {
    nothingOrErrno { rename(from, to) }
}

package func system_kill(_ pid: pid_t, _ signal: CInt) -> Result<Void, Errno> {
    nothingOrErrno { kill(pid, signal) }
}

package func system_posixFadviseSequential(_ fd: CInt) {
    #if os(Linux)
    _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    #endif
}

/// Lists a directory's entry names, excluding `.` and `..`, calling `body` for each without building
/// an array (a fan-out folder of a large store holds many thousands of names).
package func system_forEachDirectoryEntry(
    _ path: String,
    _ body: (_ name: String, _ type: UInt8) throws -> Void
) throws -> Result<Void, Errno> {
    let fd: CInt
    switch system_open(path, O_RDONLY | O_DIRECTORY) {
    case .success(let value): fd = value
    case .failure(let errno): return .failure(errno)
    }
    defer { system_close(fd) }
    return try system_forEachDirectoryEntry(inDirectory: fd, body)
}

package func system_hostname() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

package func system_getpid() -> pid_t { getpid() }

/// Fills `buffer` with random bytes from the kernel (`getrandom(2)`).
package func system_random(_ buffer: UnsafeMutableRawBufferPointer) {
    if casket_random(buffer.baseAddress, UInt(buffer.count)) != 0 {
        fatalError("getrandom failed: \(Errno(rawValue: casket_errno()))")
    }
}

/// Wall-clock time in nanoseconds since the Unix epoch (`clock_gettime(CLOCK_REALTIME)`).
package func system_wallClockNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Whether a descriptor is a terminal (`isatty(3)`): progress bars draw only on one.
package func system_isTerminal(_ fd: CInt) -> Bool { isatty(fd) == 1 }
