#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A writer's own index file and the operations that append to it (docs/FORMAT.md, section 5.5).
///
/// Created by ``CacheStore/writeSession()``. The file is created on the first write and sealed by
/// ``close()`` (or when the session is released). Not thread-safe: one session per thread.
public final class WriteSession {
    let store: CacheStore
    /// Owns the descriptor; `io` is the view used to write through it.
    private var file: FileHandle?
    private var io: FileRef?
    private var inode: (dev: UInt64, ino: UInt64) = (0, 0)
    /// The current writer id; changes if compaction folds the file away while this session is open.
    public private(set) var writerID: String
    private var lines = 0
    private var lastTimestamp: Int64 = 0
    private var closed = false

    init(store: CacheStore) {
        self.store = store
        self.writerID = WriteSession.newWriterID()
    }

    deinit { try? close() }

    static func newWriterID() -> String {
        "\(HostIdentity.host)-\(HostIdentity.pid)-\(HostIdentity.randomHex(bytes: 4))"
    }

    var path: String { store.blobs.layout.index + "/" + writerID + ".jsonl" }

    /// Sets `key` to a payload held in memory, stored as a blob (or inlined when the store allows it).
    ///
    /// - Returns: The entry as written.
    @discardableResult
    public func set(_ key: String, bytes: [UInt8]) throws(CasketError) -> IndexEntry {
        if store.blobs.config.inlineMax > 0 && bytes.count <= store.blobs.config.inlineMax {
            return try set(key, value: ValueTree.inlineBytesNode(bytes))
        }
        let put = try store.blobs.put(bytes)
        return try set(key, value: ValueTree.bytesNode(BlobRef(digest: put.digest, size: put.size))) {
            (_) throws(CasketError) in _ = try self.store.blobs.put(bytes)
        }
    }

    /// Sets `key` to the contents of a file, streamed into a blob (inlined when the store allows it).
    @discardableResult
    public func set(_ key: String, fileAt path: String) throws(CasketError) -> IndexEntry {
        if let small = try smallFile(path) { return try set(key, bytes: small) }
        let put = try store.blobs.put(fileAt: path)
        return try set(key, value: ValueTree.bytesNode(BlobRef(digest: put.digest, size: put.size))) {
            (_) throws(CasketError) in _ = try self.store.blobs.put(fileAt: path)
        }
    }

    /// Sets `key` to a stream of unknown length (for example standard input).
    @discardableResult
    public func set(
        _ key: String,
        streaming read: (UnsafeMutableRawBufferPointer) throws(CasketError) -> Int
    ) throws(CasketError) -> IndexEntry {
        let put = try store.blobs.put(streaming: read)
        return try set(key, value: ValueTree.bytesNode(BlobRef(digest: put.digest, size: put.size)))
    }

    /// Sets `key` to everything readable from a descriptor (for example 0, standard input), inlined when it
    /// ends within `inline_max` bytes.
    @discardableResult
    public func set(_ key: String, readingDescriptor fd: Int32, name: String) throws(CasketError) -> IndexEntry {
        let io = FileRef(fd: fd, path: name)
        let head = try readHead(io)
        if head.complete { return try set(key, bytes: head.bytes) }
        var pending = head.bytes[...]
        return try set(
            key,
            streaming: { (buffer) throws(CasketError) in
                guard !pending.isEmpty else { return try io.read(into: buffer) }
                let n = min(buffer.count, pending.count)
                buffer.copyBytes(from: pending.prefix(n))
                pending = pending.dropFirst(n)
                return n
            })
    }

    /// Sets `key` to a value tree whose blobs are already stored.
    ///
    /// - Parameters:
    ///   - key: Any non-empty string.
    ///   - value: A node (an object with `#type`); its blobs are found with ``ValueTree/blobs(in:)``.
    ///   - meta: Informative metadata stored with the entry.
    ///   - republish: Called for a referenced blob found missing after the line was appended (a garbage
    ///     collection swept it meanwhile); it must store that blob again. Without it such a blob is an error.
    /// - Throws: ``CasketError/Code/notFound`` when a referenced blob is missing and cannot be republished.
    @discardableResult
    public func set(
        _ key: String,
        value: JSONValue,
        meta: JSONValue? = nil,
        republish: ((BlobRef) throws(CasketError) -> Void)? = nil
    ) throws(CasketError) -> IndexEntry {
        guard !key.isEmpty else { throw CasketError(.invalidArgument, "a key must not be empty") }
        guard case .object(let object) = value, object["#type"]?.stringValue != nil else {
            throw CasketError(
                .invalidArgument, "the value of key \(KeyDisplay.quoted(key)) is not a node (an object with \"#type\")")
        }
        let blobs = try ValueTree.blobs(in: value)
        let entry = try append(key: key, value: value, blobs: blobs, meta: meta)
        // Invariant I4: a GC that finished between the blob writes and this line may have swept a blob
        // this writer deduplicated against; the line is durable now, so republishing closes the race.
        for ref in blobs where !store.blobs.contains(ref.digest) {
            guard let republish else {
                throw CasketError(
                    .notFound,
                    "blob \(ref.digest) of key \(KeyDisplay.quoted(key)) was removed (by a concurrent garbage collection?) before its entry was committed; set the key again"
                )
            }
            try republish(ref)
        }
        return entry
    }

    /// Deletes `key` by appending a tombstone.
    @discardableResult
    public func delete(_ key: String) throws(CasketError) -> IndexEntry {
        guard !key.isEmpty else { throw CasketError(.invalidArgument, "a key must not be empty") }
        return try append(key: key, value: nil, blobs: [], meta: nil)
    }

    /// Flushes the lines appended so far to stable storage (`fdatasync`), whatever the store's durability:
    /// for writers that append a batch of lines without flushing each one.
    public func flush() throws(CasketError) {
        try io?.sync(dataOnly: true)
    }

    /// Appends a seal line and closes the file. Nothing can be written afterwards.
    public func close() throws(CasketError) {
        guard !closed else { return }
        closed = true
        guard let io else { return }
        defer {
            file = nil
            self.io = nil
        }
        let seal = IndexLine.encodeSeal(timestamp: nextTimestamp())
        try typed { try seal.withUnsafeBytes { try io.writeAll($0) } }
        if store.blobs.durable { try io.sync(dataOnly: true) }
    }

    private func nextTimestamp() -> Int64 {
        lastTimestamp = max(system_wallClockNanoseconds(), lastTimestamp + 1)
        return lastTimestamp
    }

    private func append(key: String, value: JSONValue?, blobs: [BlobRef], meta: JSONValue?) throws(CasketError)
        -> IndexEntry
    {
        guard !closed else { throw CasketError(.invalidArgument, "the write session is closed") }
        let timestamp = nextTimestamp()
        while true {
            if io == nil {
                let handle = try FileHandle.createExclusive(path, mode: 0o644)
                let st = try handle.io.stat()
                inode = (UInt64(st.st_dev), UInt64(st.st_ino))
                io = handle.io
                file = consume handle
                lines = 0
            }
            let entry = IndexEntry(
                key: key, timestamp: timestamp, value: value, blobs: blobs,
                origin: .init(writer: writerID, line: lines + 1), meta: meta)
            let line = IndexLine.encode(entry, withOrigin: false)
            let io = self.io!
            try typed { try line.withUnsafeBytes { try io.writeAll($0) } }
            if store.blobs.durable { try io.sync(dataOnly: true) }
            lines += 1
            if stillOurs(io.path) { return entry }
            // Compaction took the file away: start a new one and write the line again there.
            file = nil
            self.io = nil
            writerID = WriteSession.newWriterID()
        }
    }

    /// Whether the index path still names the file this session has open.
    private func stillOurs(_ path: String) -> Bool {
        guard case .success(let current) = system_stat(path) else { return false }
        return UInt64(current.st_ino) == inode.ino && UInt64(current.st_dev) == inode.dev
    }
}
