/// A regular file opened inside a ``ConfinedFolder``: reached without following any symlink, checked by
/// `lstat` and `fstat` to be a regular file with one link before a byte of it is read.
package struct ConfinedFile: ~Copyable {
    /// The open file.
    package let handle: FileHandle
    /// What `fstat` said when it was opened.
    package let status: FileStatus

    init(handle: consuming FileHandle, status: FileStatus) {
        self.handle = handle
        self.status = status
    }

    /// Its size when it was opened.
    package var size: Int64 { status.size }

    /// Reads `length` bytes at `offset`; a short read means the file shrank.
    package func read(offset: Int64, length: Int) throws(CasketError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: length)
        let io = handle.io
        let n = try typed { try bytes.withUnsafeMutableBytes { try io.pread(into: $0, at: offset) } }
        guard n == length else {
            throw CasketError(
                .changedWhileReading, "'\(handle.path)' shrank while bytes \(offset)+\(length) were being read",
                path: handle.path)
        }
        return bytes
    }

    /// Reads the whole file as it is now (it may have grown since it was opened).
    package func readAll() throws(CasketError) -> [UInt8] {
        var bytes: [UInt8] = []
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        let io = handle.io
        while true {
            let offset = Int64(bytes.count)
            let n = try typed { try buffer.withUnsafeMutableBytes { try io.pread(into: $0, at: offset) } }
            bytes.append(contentsOf: buffer[..<n])
            if n < chunk { return bytes }
        }
    }
}
