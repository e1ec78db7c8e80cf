/// One line of an index file: a key set to a value, or a tombstone (docs/FORMAT.md, section 5.2).
public struct IndexEntry: Sendable, Equatable {
    /// Where a line was first written: the tie-breaker of the winner rule.
    public struct Origin: Sendable, Hashable, Comparable, CustomStringConvertible {
        /// The writer id (the index file name without `.jsonl`).
        public var writer: String
        /// The 1-based line number in that writer's file.
        public var line: Int

        /// Creates an origin.
        public init(writer: String, line: Int) {
            self.writer = writer
            self.line = line
        }

        /// Equal when the writer ids have the same bytes and the line numbers are equal.
        public static func == (lhs: Origin, rhs: Origin) -> Bool {
            lhs.line == rhs.line && lhs.writer.sameBytes(as: rhs.writer)
        }

        /// Hashes the writer id's bytes and the line number.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(IndexKey(writer))
            hasher.combine(line)
        }

        /// Orders by writer id as bytes, then line number.
        public static func < (lhs: Origin, rhs: Origin) -> Bool {
            if !lhs.writer.sameBytes(as: rhs.writer) {
                return Array(lhs.writer.utf8).lexicographicallyPrecedes(rhs.writer.utf8)
            }
            return lhs.line < rhs.line
        }

        /// `writer:line`.
        public var description: String { "\(writer):\(line)" }
    }

    /// The key.
    public var key: String
    /// The writer's wall-clock time, nanoseconds since the epoch.
    public var timestamp: Int64
    /// The value tree; `nil` for a tombstone.
    public var value: JSONValue?
    /// Every blob the value references.
    public var blobs: [BlobRef]
    /// Where the line was first written.
    public var origin: Origin
    /// Informative metadata (`meta`), ignored by the winner rule.
    public var meta: JSONValue?

    /// Creates an entry.
    public init(
        key: String, timestamp: Int64, value: JSONValue?, blobs: [BlobRef], origin: Origin, meta: JSONValue? = nil
    ) {
        self.key = key
        self.timestamp = timestamp
        self.value = value
        self.blobs = blobs
        self.origin = origin
        self.meta = meta
    }

    /// Field-by-field equality; the key compared as bytes.
    public static func == (lhs: IndexEntry, rhs: IndexEntry) -> Bool {
        lhs.key.sameBytes(as: rhs.key) && lhs.timestamp == rhs.timestamp && lhs.value == rhs.value
            && lhs.blobs == rhs.blobs && lhs.origin == rhs.origin && lhs.meta == rhs.meta
    }

    /// True for a tombstone.
    public var isDeleted: Bool { value == nil }

    /// The winner rule: greater `(timestamp, origin writer, origin line)` wins (docs/FORMAT.md, section 5.4).
    public func wins(over other: IndexEntry) -> Bool {
        if timestamp != other.timestamp { return timestamp > other.timestamp }
        return other.origin < origin
    }

    /// The sum of the sizes of the referenced blobs, plus inline payloads.
    public var payloadBytes: Int64 {
        blobs.reduce(0) { $0 + $1.size } + (value.map(ValueTree.inlineBytes(in:)) ?? 0)
    }
}
