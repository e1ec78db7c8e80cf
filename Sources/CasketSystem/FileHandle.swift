#if canImport(Glibc)
package import Glibc
#elseif canImport(Darwin)
package import Darwin
#endif

/// An open file descriptor that closes itself, with the path it was opened from for error messages.
///
/// `~Copyable` so that exactly one owner closes it; not `Sendable`, since a descriptor's offset is
/// shared state.
package struct FileHandle: ~Copyable {
    package let fd: CInt
    package let path: String

    package init(fd: CInt, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { system_close(fd) }

    package static func openForReading(_ path: String) throws(CasketError) -> FileHandle {
        switch system_open(path, O_RDONLY) {
        case .success(let fd): return FileHandle(fd: fd, path: path)
        case .failure(let errno): throw .open(path, errno: errno)
        }
    }

    /// Creates a new file that must not exist yet (`O_CREAT | O_EXCL`), open for reading and writing.
    package static func createExclusive(_ path: String, mode: mode_t = 0o666) throws(CasketError) -> FileHandle {
        switch system_open(path, O_RDWR | O_CREAT | O_EXCL, mode) {
        case .success(let fd): return FileHandle(fd: fd, path: path)
        case .failure(let errno): throw .open(path, forWriting: true, errno: errno)
        }
    }

    /// A non-owning view used for I/O; valid while this handle lives.
    package var io: FileRef { FileRef(fd: fd, path: path) }
}

/// A borrowed descriptor and its path: the I/O operations, usable from closures while a ``FileHandle``
/// (the owner) stays alive.
package struct FileRef {
    package let fd: CInt
    package let path: String

    package init(fd: CInt, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Reads up to `buffer.count` bytes; returns 0 at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws(CasketError) -> Int {
        switch system_read(fd, buffer) {
        case .success(let n): return n
        case .failure(let errno): throw .read(path, errno: errno)
        }
    }

    /// Reads until `buffer` is full or the file ends; returns the number of bytes read.
    package func readFully(into buffer: UnsafeMutableRawBufferPointer) throws(CasketError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if n == 0 { break }
            filled += n
        }
        return filled
    }

    /// Reads at an absolute offset until `buffer` is full or the file ends.
    package func pread(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(CasketError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[filled...])
            switch system_pread(fd, slice, offset + Int64(filled)) {
            case .success(0): return filled
            case .success(let n): filled += n
            case .failure(let errno): throw .read(path, errno: errno)
            }
        }
        return filled
    }

    /// Writes all of `buffer`, looping over short writes.
    package func writeAll(_ buffer: UnsafeRawBufferPointer) throws(CasketError) {
        var written = 0
        while written < buffer.count {
            switch system_write(fd, UnsafeRawBufferPointer(rebasing: buffer[written...])) {
            case .success(let n): written += n
            case .failure(let errno): throw .write(path, errno: errno)
            }
        }
    }

    package func sync(dataOnly: Bool = false) throws(CasketError) {
        let result = dataOnly ? system_fdatasync(fd) : system_fsync(fd)
        if case .failure(let errno) = result { throw .sync(path, errno: errno) }
    }

    /// Starts writing `length` bytes at `offset` to the disk without waiting (Linux `sync_file_range`
    /// with `SYNC_FILE_RANGE_WRITE`), so a later `fdatasync` finds most of them written. Nothing rests on
    /// it: a failure is ignored, and elsewhere it does nothing.
    package func startWriteback(offset: Int64, length: Int64) { system_startWriteback(fd, offset, length) }

    package func stat() throws(CasketError) -> stat {
        switch system_fstat(fd) {
        case .success(let st): return st
        case .failure(let errno): throw .stat(path, errno: errno)
        }
    }

    /// `fstat` as a ``FileStatus``.
    package func status() throws(CasketError) -> FileStatus { FileStatus(try stat()) }

    package func adviseSequential() { system_posixFadviseSequential(fd) }
}

extension stat {
    package var isRegularFile: Bool { (st_mode & S_IFMT) == S_IFREG }
    package var isDirectory: Bool { (st_mode & S_IFMT) == S_IFDIR }
    package var size: Int64 { Int64(st_size) }
    /// Modification time in nanoseconds since the epoch.
    package var mtimeNanoseconds: Int64 { Int64(st_mtim.tv_sec) * 1_000_000_000 + Int64(st_mtim.tv_nsec) }
}
