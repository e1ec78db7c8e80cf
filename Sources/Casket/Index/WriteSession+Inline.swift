extension WriteSession {
    /// The first bytes of a stream, read to tell whether the whole payload fits `inline_max` (FORMAT.md,
    /// section 6.3): a file or standard input is inlined by the same rule as a payload held in memory.
    struct Head {
        /// What was read: at most `inline_max + 1` bytes.
        var bytes: [UInt8]
        /// True when the stream ended within `inline_max` bytes: `bytes` is the whole payload.
        var complete: Bool
    }

    /// Reads up to `inline_max + 1` bytes of `io`; nothing when the store does not inline.
    func readHead(_ io: FileRef) throws(CasketError) -> Head {
        let limit = store.blobs.config.inlineMax
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

    /// The whole contents of a regular file of at most `inline_max` bytes, else `nil` (stored as a blob).
    func smallFile(_ path: String) throws(CasketError) -> [UInt8]? {
        let limit = store.blobs.config.inlineMax
        guard limit > 0 else { return nil }
        let handle = try FileHandle.openForReading(path)
        let status = try handle.io.status()
        guard status.kind == .regular && status.size <= Int64(limit) else { return nil }
        let head = try readHead(handle.io)
        return head.complete ? head.bytes : nil
    }
}
