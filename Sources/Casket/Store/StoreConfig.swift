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
        /// `fsync` blobs, their directories and index lines, each before the write returns.
        case fsync
        /// Group commit (docs/FORMAT.md 5.5), the default: blob files as with `fsync`; index lines and pack
        /// records flushed once per batch of a write session.
        case group
        /// No flushing: faster, for scratch stores; a power loss may lose recent writes.
        case none
    }

    /// The newest format version this implementation reads and writes: 2, stores that may hold packs
    /// (docs/FORMAT.md 3.7). A store created without packs (`pack_max` 0) is still version 1, which every
    /// reader opens; a version 1 store is never upgraded by opening or writing it.
    public static let currentVersion = 2

    /// The `pack_max` of a new store: payloads below it are packed. Measured where packing stops paying
    /// for writes and reads through both languages (docs/PERFORMANCE.md 10).
    public static let defaultPackMax = 1 << 16

    /// The largest `pack_max`: a record's form follows the rule of FORMAT 3.2 over its whole payload.
    public static let maximumPackMax = 1 << 20
    /// The pack size after which a writer seals its pack (16 MiB, as restic and kopia).
    public static let defaultPackSize: Int64 = 16 << 20
    /// The range of `pack_size`.
    public static let packSizeRange: ClosedRange<Int64> = (64 << 10)...(1 << 30)

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
    /// Payloads of fewer bytes are appended to packs (docs/FORMAT.md 3.7) in a store of version 2; 0: none.
    public var packMax: Int
    /// The size after which a writer seals its pack.
    public var packSize: Int64
    /// Whether writers pack small payloads.
    public var packs: Bool { version >= 2 && packMax > 0 }

    /// Creates a configuration for a new store.
    ///
    /// - Parameters:
    ///   - compression: How new blobs are kept (default: raw).
    ///   - durability: Whether writes are flushed (default: group commit, docs/FORMAT.md 5.5).
    ///   - inlineMax: The largest payload inlined in an index entry (default: 0, never).
    ///   - chunksMin: The smallest blob that gets chunk digests (default 4 MiB, docs/PERFORMANCE.md 9).
    ///   - packMax: Pack payloads of fewer bytes (default ``defaultPackMax``; 0, never, makes a version 1
    ///     store); a store with packs is of version 2.
    ///   - packSize: Seal a pack once it holds this many bytes (default 16 MiB).
    public init(
        compression: Compression = .none, durability: Durability = .group, inlineMax: Int = 0,
        chunksMin: Int64 = ChunkDigests.defaultMinimum, packMax: Int = StoreConfig.defaultPackMax,
        packSize: Int64 = StoreConfig.defaultPackSize
    ) {
        self.version = packMax > 0 ? 2 : 1
        self.packMax = packMax
        self.packSize = packSize
        self.compression = compression
        self.durability = durability
        self.inlineMax = inlineMax
        self.chunksMin = chunksMin
    }
}
