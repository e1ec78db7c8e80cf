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
        var live = Set<Digest>()
        for entry in reader.winners.values {
            if entry.isDeleted {
                stats.deletedKeys += 1
                continue
            }
            stats.keys += 1
            for ref in entry.blobs {
                stats.logicalBytes += ref.size
                if live.insert(ref.digest).inserted { stats.liveBytes += ref.size }
            }
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
        /// Every blob referenced by a live winner, plus every well-formed hash in a malformed line.
        public var live: Set<Digest>
        /// Live keys.
        public var keys: Int
        /// Well-formed entry lines read.
        public var entries: Int
        /// Index files read.
        public var indexFiles: Int
        /// Malformed lines (their hashes are in `live`, conservatively).
        public var issues: [IndexIssue]
    }

    /// Reads every index file once, keeping only what marking needs (not the value trees).
    ///
    /// A malformed line cannot be judged a winner or not, so every well-formed hash in it counts as live.
    ///
    /// - Parameter visit: Called with each live key and the blobs its winner references (fsck uses it to
    ///   find missing blobs without holding value trees in memory).
    @_spi(Maintenance) public static func mark(
        _ blobs: BlobStore, visit: ((_ key: String, _ blobs: [Digest]) throws(CasketError) -> Void)? = nil
    ) throws(CasketError) -> Mark {
        try makeDirectory(blobs.layout.index, existingIsFine: true)
        // A pass in which every listed file could be read saw every line that existed when the folder was
        // listed: compaction renames and writes its output before deleting what it folded (FORMAT.md 5.6).
        // A file that vanished between listing and reading (folded away) forces another pass.
        var reader = IndexReader(directory: blobs.layout.index)
        for attempt in 1...20 {
            reader = IndexReader(directory: blobs.layout.index)
            reader.keepValues = false
            reader.collectMalformedHashes = true
            try reader.refresh()
            if !reader.fileVanishedDuringLastRefresh { break }
            if attempt == 20 {
                throw CasketError(
                    .busy, "index files of '\(blobs.root)' kept vanishing while being read (compaction running?)")
            }
        }
        var live = reader.malformedHashes
        var keys = 0
        live.reserveCapacity(reader.markWinners.count)
        for (key, winner) in reader.markWinners where !winner.deleted {
            keys += 1
            try visit?(key, winner.blobs)
            if winner.count > 0 { live.insert(winner.first) }
            for digest in winner.more ?? [] { live.insert(digest) }
        }
        return Mark(
            live: live, keys: keys, entries: reader.entryCount, indexFiles: reader.files.count, issues: reader.issues)
    }
}

extension CacheStore {
    /// Calls `body` with every live winner in key order, one at a time (`casket ls` streams through it):
    /// the winner table is the only per-key memory, plus one array of its keys to sort.
    public func forEachEntry(_ body: (IndexEntry) throws(CasketError) -> Void) throws(CasketError) {
        try refresh()
        let winners = reader.winners
        var keys: [String] = []
        keys.reserveCapacity(winners.count)
        for (key, entry) in winners where !entry.isDeleted { keys.append(key) }
        keys.sort()
        for key in keys {
            if let entry = winners[key] { try body(entry) }
        }
    }
}
