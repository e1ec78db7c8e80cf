/// A keyed cache over a blob store: keys map to index entries that reference blobs by hash.
///
/// The Swift counterpart of exca's `CacheDict`, without its per-writer data files: sixteen writers of
/// the same value store one blob and sixteen small index lines.
///
/// ```swift
/// let cache = try CacheStore.open(at: "/data/cache")
/// let session = try cache.writeSession()
/// try session.set("recording/17", bytes: payload)
/// try session.close()
/// let bytes = try cache.get("recording/17")
/// ```
///
/// Queries refresh the view first, reading only the index bytes appended since the last query.
/// Not thread-safe: use one `CacheStore` per thread (they may share a folder, like processes).
public final class CacheStore {
    /// The blob store underneath.
    public let blobs: BlobStore
    var reader: IndexReader
    /// A test hook: runs between the refresh of ``entry(_:)`` and the read of the winning line.
    var beforeLineRead: (() -> Void)?

    /// Opens the keyed cache of an existing store.
    ///
    /// - Throws: as ``BlobStore/open(at:)``.
    public static func open(at root: String) throws(CasketError) -> CacheStore {
        CacheStore(blobs: try BlobStore.open(at: root))
    }

    /// Wraps an open blob store.
    public init(blobs: BlobStore) {
        self.blobs = blobs
        self.reader = IndexReader(directory: blobs.layout.index)
    }

    /// Reads index bytes appended since the last refresh (all of them the first time).
    public func refresh() throws(CasketError) {
        _ = try blobs.directories.folder(.index, create: true)
        try reader.refresh()
    }

    /// The live keys, sorted.
    public func keys() throws(CasketError) -> [String] {
        try refresh()
        // Sorted by bytes: `String <` would order NFC and NFD forms of a key arbitrarily.
        return reader.winners.sortedKeys().map(\.string)
    }

    /// Whether `key` is live.
    public func contains(_ key: String) throws(CasketError) -> Bool {
        try refresh()
        return reader.winners[IndexKey(key)].map { !$0.isDeleted } ?? false
    }

    /// Whether the key's winner is a tombstone: it was deleted (and not set again).
    public func isDeleted(_ key: String) throws(CasketError) -> Bool {
        try refresh()
        return reader.winners[IndexKey(key)]?.isDeleted ?? false
    }

    /// The winning entry of a live key, or `nil` when the key is absent or deleted.
    ///
    /// The value tree is parsed again from the winning line (docs/DESIGN.md 3.5); a line that moved since
    /// the index was read (a compaction) is found again, never returned wrong.
    public func entry(_ key: String) throws(CasketError) -> IndexEntry? {
        try refresh()
        beforeLineRead?()
        guard let entry = try reader.winningEntry(IndexKey(key)), !entry.isDeleted else { return nil }
        return entry
    }

    /// Every live winner, sorted by key: every value tree in memory at once (``forEachEntry(_:)`` streams).
    public func entries() throws(CasketError) -> [IndexEntry] {
        var out: [IndexEntry] = []
        try forEachEntry { out.append($0) }
        return out
    }

    /// Malformed index lines met so far, each with its file and line number.
    public var issues: [IndexIssue] { reader.issues }

    /// Entries of `index/` that the last refresh skipped because they are not index files (a symlink, a
    /// directory, a FIFO, a name starting with `.`): never read, reported by the commands.
    public var indexDebris: [IndexDebris] { reader.debris }

    /// Index bytes read by the last refresh: a refresh with nothing new reads none.
    public var bytesReadByLastRefresh: Int64 { reader.bytesReadByLastRefresh }

    /// Opens a write session: a new index file owned by this process.
    public func writeSession() throws(CasketError) -> WriteSession {
        _ = try blobs.directories.folder(.index, create: true)
        return WriteSession(store: self)
    }

    /// Writes the single payload of `key`'s value to `sink`, verified.
    ///
    /// - Throws: ``CasketError/Code/notFound`` for an absent key, ``CasketError/Code/unsupportedValue`` for a
    ///   value of several payloads or none (use ``entry(_:)`` for those).
    @discardableResult
    public func read(_ key: String, to sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError)
        -> Int64
    {
        switch try singlePayload(key) {
        case .blob(let ref): return try blobs.read(ref.digest, size: ref.size, to: sink)
        case .inline(let bytes):
            try typed { try bytes.withUnsafeBytes { try sink($0) } }
            return Int64(bytes.count)
        }
    }

    /// The single payload of `key`'s value, in memory. Meant for small values; stream large ones.
    public func get(_ key: String) throws(CasketError) -> [UInt8] {
        switch try singlePayload(key) {
        case .blob(let ref): return try blobs.readAll(ref.digest, size: ref.size)
        case .inline(let bytes): return bytes
        }
    }

    /// The payload of a value that has exactly one.
    public func singlePayload(_ key: String) throws(CasketError) -> ValueTree.Payload {
        // Most values are one blob: the table knows it, and the line is not read again.
        try refresh()
        if let ref = reader.winners.singleBlob(IndexKey(key)) { return .blob(ref) }
        guard let entry = try entry(key), let value = entry.value else {
            throw CasketError(.notFound, "key \(KeyDisplay.quoted(key)) is not in the store '\(blobs.root)'")
        }
        let payloads = try ValueTree.payloads(in: value)
        guard payloads.count == 1 else {
            let type = value["#type"]?.stringValue ?? "?"
            throw CasketError(
                .unsupportedValue,
                "the value of key \(KeyDisplay.quoted(key)) (\(type)) has \(payloads.count) payloads, not one; use 'casket show' to see it"
            )
        }
        return payloads[0]
    }
}
