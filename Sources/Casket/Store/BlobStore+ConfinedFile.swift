extension BlobStore {
    /// Stores a byte range of a file opened inside a ``ConfinedFolder`` (a migration's source), streamed.
    /// See ``put(fileAt:offset:length:hashFirst:)``.
    package func put(
        _ file: borrowing ConfinedFile, offset: Int64, length: Int64, hashFirst: Bool = true
    ) throws(CasketError) -> PutResult {
        _ = try BlobStore.checkRange(file.handle.io, offset: offset, length: length)
        return try putRange(file.handle.io, offset: offset, length: length, hashFirst: hashFirst)
    }

    /// The XXH3-128 digest of a byte range of a file opened inside a ``ConfinedFolder``, streamed.
    package static func digest(of file: borrowing ConfinedFile, offset: Int64, length: Int64) throws(CasketError)
        -> Digest
    {
        _ = try checkRange(file.handle.io, offset: offset, length: length)
        return try hashRange(file.handle.io, offset: offset, length: length, chunks: nil)
    }
}
