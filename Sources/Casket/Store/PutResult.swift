/// What a put did.
public struct PutResult: Sendable, Equatable {
    /// The payload's identity.
    public var digest: Digest
    /// The payload size in bytes (uncompressed).
    public var size: Int64
    /// True when the blob was already stored and only freshened: nothing was written.
    public var deduplicated: Bool
    /// True when the blob is kept as an LZ4 frame.
    public var compressed: Bool
    /// The size of the blob file on disk.
    public var storedBytes: Int64

    /// Creates a result.
    public init(digest: Digest, size: Int64, deduplicated: Bool, compressed: Bool, storedBytes: Int64) {
        self.digest = digest
        self.size = size
        self.deduplicated = deduplicated
        self.compressed = compressed
        self.storedBytes = storedBytes
    }
}

/// Where and how a blob is stored.
public struct BlobLocation: Sendable, Equatable {
    /// The blob's identity.
    public var digest: Digest
    /// The blob file's path.
    public var path: String
    /// True for the LZ4-frame form.
    public var compressed: Bool
    /// The blob file's size on disk.
    public var storedBytes: Int64
    /// The payload size, when known without decoding (always for raw blobs).
    public var size: Int64?
    /// The blob file's modification time, nanoseconds since the epoch.
    public var mtimeNanoseconds: Int64
}
