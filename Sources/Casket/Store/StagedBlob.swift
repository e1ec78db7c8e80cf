/// A payload fully written to a temp file and hashed, ready to publish.
struct StagedBlob: ~Copyable {
    var temp: AtomicFile
    let digest: Digest
    let size: Int64
    let compressed: Bool
    let storedBytes: Int64
}
