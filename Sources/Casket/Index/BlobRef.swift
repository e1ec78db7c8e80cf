/// A reference from an index entry to a blob: its hash and uncompressed size.
public struct BlobRef: Sendable, Hashable, CustomStringConvertible {
    /// The blob's identity.
    public var digest: Digest
    /// The payload size in bytes.
    public var size: Int64

    /// Creates a reference.
    public init(digest: Digest, size: Int64) {
        self.digest = digest
        self.size = size
    }

    /// `hash:size`.
    public var description: String { "\(digest.hex):\(size)" }
}
