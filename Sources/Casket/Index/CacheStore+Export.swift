extension CacheStore {
    /// Writes the single payload of `key` to a file that appears only once the payload is verified.
    @discardableResult
    public func export(_ key: String, toFileAt path: String) throws(CasketError) -> Int64 {
        if case .blob(let ref) = try singlePayload(key) {
            return try blobs.export(ref.digest, size: ref.size, toFileAt: path)
        }
        return try blobs.exportStream(toFileAt: path) { (sink) throws(CasketError) in try read(key, to: sink) }
    }

    /// Streams the single payload of `key` to an open descriptor (for example 1, standard output).
    @discardableResult
    public func export(_ key: String, toDescriptor fd: Int32, name: String) throws(CasketError) -> Int64 {
        let out = FileRef(fd: fd, path: name)
        return try read(key) { (bytes) throws(CasketError) in try out.writeAll(bytes) }
    }
}
