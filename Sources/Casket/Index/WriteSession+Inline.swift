extension WriteSession {
    /// The first bytes of a stream, read to tell whether the whole payload fits `inline_max` (FORMAT.md,
    /// section 6.3) or goes to a pack (3.7): a file or standard input follows the same rule as a payload
    /// held in memory.
    struct Head {
        /// What was read: at most `smallLimit + 1` bytes.
        var bytes: [UInt8]
        /// True when the stream ended within `smallLimit` bytes: `bytes` is the whole payload.
        var complete: Bool
    }

    /// The largest payload kept in memory to be inlined or packed rather than streamed into a blob file.
    var smallLimit: Int {
        let config = store.blobs.config
        return max(config.inlineMax, config.packs ? config.packMax - 1 : 0)
    }

    /// Reads up to `smallLimit + 1` bytes of `io`; nothing when the store neither inlines nor packs.
    func readHead(_ io: FileRef) throws(CasketError) -> Head {
        let limit = smallLimit
        guard limit > 0 else { return Head(bytes: [], complete: false) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count < bytes.count {
            let start = count
            let n = try typed {
                try bytes.withUnsafeMutableBytes { buffer in
                    try io.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]))
                }
            }
            if n == 0 { return Head(bytes: Array(bytes[..<count]), complete: true) }
            count += n
        }
        return Head(bytes: bytes, complete: false)
    }

    /// The whole contents of a regular file of at most `smallLimit` bytes, else `nil` (stored as a blob).
    func smallFile(_ path: String) throws(CasketError) -> [UInt8]? {
        let limit = smallLimit
        guard limit > 0 else { return nil }
        let handle = try FileHandle.openForReading(path)
        let status = try handle.io.status()
        guard status.kind == .regular && status.size <= Int64(limit) else { return nil }
        let head = try readHead(handle.io)
        return head.complete ? head.bytes : nil
    }
}
