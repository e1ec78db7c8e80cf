/// The settings a store is created with, kept in `casket.json` at its root (docs/FORMAT.md, section 2).
public struct StoreConfig: Sendable, Equatable {
    /// How writers keep new blobs.
    public enum Compression: String, Sendable, CaseIterable {
        /// Raw bytes only: every blob can be memory-mapped.
        case none
        /// An LZ4 frame when the payload's first MiB compresses by at least 10 % (docs/FORMAT.md 3.2), raw
        /// bytes otherwise.
        case lz4
    }

    /// Whether writers flush data to stable storage before reporting success.
    public enum Durability: String, Sendable, CaseIterable {
        /// `fsync` blobs, their directories and index lines (the default).
        case fsync
        /// No flushing: faster, for scratch stores; a power loss may lose recent writes.
        case none
    }

    /// The newest format version this implementation reads and writes.
    public static let currentVersion = 1

    /// The largest `inline_max` a store may have (docs/FORMAT.md section 2): inlined payloads live in
    /// index lines, which every reader loads.
    public static let maximumInlineMax = 1 << 20

    /// The format version of the store.
    public var version: Int
    /// How new blobs are kept.
    public var compression: Compression
    /// Whether writes are flushed.
    public var durability: Durability
    /// Payloads up to this many bytes may be inlined in index entries; 0 disables inlining.
    public var inlineMax: Int
    /// Blobs of at least this many bytes (and not empty) get chunk digests (docs/FORMAT.md 3.6).
    public var chunksMin: Int64

    /// Creates a configuration for a new store.
    ///
    /// - Parameters:
    ///   - compression: How new blobs are kept (default: raw).
    ///   - durability: Whether writes are flushed (default: fsync).
    ///   - inlineMax: The largest payload inlined in an index entry (default: 0, never).
    ///   - chunksMin: The smallest blob that gets chunk digests (default 4 MiB, docs/PERFORMANCE.md 9).
    public init(
        compression: Compression = .none, durability: Durability = .fsync, inlineMax: Int = 0,
        chunksMin: Int64 = ChunkDigests.defaultMinimum
    ) {
        self.version = StoreConfig.currentVersion
        self.compression = compression
        self.durability = durability
        self.inlineMax = inlineMax
        self.chunksMin = chunksMin
    }
}
