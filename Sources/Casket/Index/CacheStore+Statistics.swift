extension CacheStore {
    /// What the index holds.
    public struct Statistics: Sendable, Equatable {
        /// Live keys.
        public var keys = 0
        /// Well-formed entry lines (sets and tombstones) in all index files.
        public var entries = 0
        /// Entry lines that are not the winner of their key: duplicates, overwritten values, old tombstones.
        public var duplicateEntries = 0
        /// Deleted keys (the winner is a tombstone).
        public var deletedKeys = 0
        /// Uncompressed bytes of the distinct blobs referenced by live keys.
        public var liveBytes: Int64 = 0
        /// Uncompressed bytes of live values, key by key (a blob shared by two keys counts twice).
        public var logicalBytes: Int64 = 0
        /// Index files.
        public var indexFiles = 0
        /// Malformed index lines.
        public var malformedLines = 0
    }

    /// Counts keys, entries and live bytes (reads the index; does not walk blobs).
    public func indexStatistics() throws(CasketError) -> Statistics {
        try refresh()
        var stats = Statistics()
        stats.keys = reader.winners.liveCount
        stats.deletedKeys = reader.winners.count - stats.keys
        // Distinct blobs by one sort of an array (24 bytes a blob), not a hash set.
        var live: [BlobRef] = []
        reader.winners.forEachLiveBlob { (ref) in
            stats.logicalBytes += ref.size
            live.append(ref)
        }
        live.sort { $0.digest < $1.digest }
        for (i, ref) in live.enumerated() where i == 0 || live[i - 1].digest != ref.digest {
            stats.liveBytes += ref.size
        }
        stats.entries = reader.entryCount
        stats.duplicateEntries = reader.entryCount - reader.winners.count
        stats.indexFiles = reader.files.count
        stats.malformedLines = reader.issues.count
        return stats
    }
}

extension CacheStore {
    /// What garbage collection's mark found in the index.
    @_spi(Maintenance) public struct Mark: Sendable {
        /// Every blob referenced by a live winner, plus every well-formed hash in a malformed line: a
        /// sorted array, 16 bytes a blob.
        public var live: DigestSet
        /// Live keys.
        public var keys: Int
        /// Well-formed entry lines read.
        public var entries: Int
        /// Index files read.
        public var indexFiles: Int
        /// Malformed lines (their hashes are in `live`, conservatively).
        public var issues: [IndexIssue]
        /// Entries of `index/` that are not index files (never read).
        public var debris: [IndexDebris]
    }

    /// Reads every index file, keeping only what marking needs (not the value trees), under the index
    /// lock so that no compaction renames or removes an index file meanwhile.
    ///
    /// Why the mark is complete (docs/GC.md, "Mark"): with the index lock held, the only process that
    /// renames or removes index files (compaction) is not running, so every file that exists when the
    /// listing starts exists until it ends and is listed (POSIX `readdir` may miss only entries added or
    /// removed during the listing). Files created meanwhile hold only lines written after the mark
    /// started, which the writers' own blob recheck covers (FORMAT.md 5.5 step 4). As a second guard, a
    /// pass is repeated when a listed file vanished before it was read, or when a second listing after the
    /// read lacks a name of the first or shows a compaction's name (`.folding`, `compact-`) the first did
    /// not: a lock taken over from a paused compaction cannot make the mark miss a file silently.
    ///
    /// A malformed line cannot be judged a winner or not, so every well-formed hash in it counts as live.
    ///
    /// - Parameters:
    ///   - lockTTL: How old the heartbeat of a compaction's index lock must be before it is taken over.
    ///   - lockWait: How long to wait for a running compaction to finish.
    ///   - visit: Called with each live key and the blobs its winner references (fsck uses it to find
    ///     missing blobs without holding value trees in memory).
    @_spi(Maintenance) public static func mark(
        _ blobs: BlobStore, lockTTL: Int64 = 300_000_000_000, lockWait: Int64 = 600_000_000_000,
        visit: ((_ key: String, _ blobs: [Digest]) throws(CasketError) -> Void)? = nil
    ) throws(CasketError) -> Mark {
        let directory = blobs.layout.index
        _ = try blobs.directories.folder(.index, create: true)
        let lock = try IndexLock.acquire(blobs, purpose: "mark", ttl: lockTTL, wait: lockWait)
        defer { lock.release() }
        var reader = IndexReader(directory: directory)
        for attempt in 1...20 {
            reader = IndexReader(directory: directory)
            reader.keepValues = false
            reader.collectMalformedHashes = true
            try reader.refresh()
            let first = Set(reader.listed.keys)
            let second = Set(try IndexDirectory.list(directory).files.keys)
            let compactionMoved = second.subtracting(first).contains { (name: IndexKey) in
                name.string.hasSuffix(IndexDirectory.foldingSuffix)
                    || name.string.hasPrefix(IndexDirectory.compactPrefix)
            }
            if !reader.fileVanishedDuringLastRefresh && first.isSubset(of: second) && !compactionMoved { break }
            if attempt == 20 {
                throw CasketError(
                    .busy,
                    "index files of '\(blobs.root)' kept being renamed while being read (a compaction that "
                        + "lost the index lock?)", path: directory)
            }
        }
        // What follows reads no index file: let compactions go on.
        lock.release()
        if let visit {
            try reader.markWinners.forEach { (key, winner) throws(CasketError) in
                if !winner.deleted { try visit(key, winner.blobs) }
            }
        }
        // The live set as one array of hashes, sorted once: no hash table of them.
        var referenced = Array(reader.malformedHashes)
        referenced.reserveCapacity(reader.markWinners.count + referenced.count)
        reader.markWinners.forEachLiveBlob { referenced.append($0) }
        let keys = reader.markWinners.liveCount
        let live = DigestSet(consume referenced)
        return Mark(
            live: live, keys: keys, entries: reader.entryCount, indexFiles: reader.files.count, issues: reader.issues,
            debris: reader.debris)
    }

    /// Whether `name` (in `index/`) is compaction's unpublished output, `compact-*.jsonl.tmp`.
    @_spi(Maintenance) public static func isCompactionTemp(_ name: String) -> Bool {
        IndexDirectory.isCompactionTemp(name)
    }
}

extension CacheStore {
    /// What `casket ls` prints of a live key: read from the winner table, no value tree parsed.
    public struct Listing: Sendable, Equatable {
        /// The key.
        public var key: String
        /// The winner's time.
        public var timestamp: Int64
        /// Blob and inline payload bytes (``IndexEntry/payloadBytes``).
        public var size: Int64
        /// The number of blobs the winning line lists.
        public var blobs: Int
        /// The value's `#type`, empty if it has none.
        public var type: String
    }

    /// Calls `body` with every live key in key order (bytes), one at a time, from the winner table alone:
    /// `casket ls` streams through it, with one array of 4-byte record numbers sorted.
    public func forEachListing(_ body: (Listing) throws(CasketError) -> Void) throws(CasketError) {
        try refresh()
        try reader.winners.forEachLive { (key, winner) throws(CasketError) in
            try body(
                Listing(
                    key: key, timestamp: winner.timestamp, size: winner.payloadBytes, blobs: winner.blobCount,
                    type: winner.type))
        }
    }

    /// Calls `body` with every live winner in key order (bytes, as ``entries()``), one at a time, each
    /// value tree parsed again from its line: the winner table is the only per-key memory.
    public func forEachEntry(_ body: (IndexEntry) throws(CasketError) -> Void) throws(CasketError) {
        try refresh()
        for key in reader.winners.sortedKeys() {
            if let entry = try reader.winningEntry(key), !entry.isDeleted { try body(entry) }
        }
    }
}
