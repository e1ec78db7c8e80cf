/// A whole file mapped read-only, unmapped when the value goes away.
///
/// For files written once and never truncated (pack indexes): the pages are the page cache's, shared by
/// every reader, so a reader of ten thousand pack indexes costs address space, not memory. A mapping of
/// a file truncated under it would fault, which is why blobs and inputs are never read this way.
package final class MappedFile: @unchecked Sendable {
    /// The mapped bytes (empty for an empty file).
    package let bytes: UnsafeRawBufferPointer
    /// The file's path, for messages.
    package let path: String

    /// Maps the first `length` bytes of an open file.
    package init(_ io: FileRef, length: Int) throws(CasketError) {
        path = io.path
        guard length > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        switch system_mmapReadOnly(io.fd, length) {
        case .success(let base): bytes = UnsafeRawBufferPointer(start: base, count: length)
        case .failure(let errno): throw .syscall("map", path: io.path, errno: errno)
        }
    }

    deinit {
        if let base = bytes.baseAddress { system_munmap(base, bytes.count) }
    }
}
