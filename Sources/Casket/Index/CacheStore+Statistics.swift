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
