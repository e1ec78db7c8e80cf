/// A payload fully written to a temp file and hashed, ready to publish.
struct StagedBlob: ~Copyable {
    var temp: AtomicFile
    let digest: Digest
    let size: Int64
    let compressed: Bool
    let storedBytes: Int64
    /// The payload's chunk digests, computed in the same pass as `digest` (docs/FORMAT.md 3.6).
    var chunks: [UInt64]? = nil
}
