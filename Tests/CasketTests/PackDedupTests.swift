import Casket
import CasketTestSupport
import Testing

/// The dedup check of a payload about to be packed (docs/FORMAT.md 3.7-3.8): it may take a fan-out
/// folder it found empty to stay empty for a moment, but never misses what its own process published.
@Suite("packing puts: the dedup check against blob files")
struct PackDedupTests {
    @Test("a small put dedups against a blob file its process published after finding the folder empty")
    func ownPublishIsSeen() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, packMax: 4096)
            let cache = CacheStore(blobs: store)
            let x = TestBytes.random(1000, seed: 1)
            let slot = Digest(hashing: x).hex.prefix(2)
            // Another payload of the same fan-out folder: packing it finds that folder empty.
            let y = try #require(
                (2..<5000).lazy.map { TestBytes.random(1000, seed: UInt64($0)) }.first {
                    Digest(hashing: $0).hex.prefix(2) == slot
                })
            let session = try cache.writeSession()
            try session.set("y", bytes: y)
            #expect(TestFiles.names(in: store.root + "/blobs/" + slot).isEmpty)
            let loose = try store.put(x)
            #expect(!loose.deduplicated && TestStore.blobFiles(store.root).count == 1)
            let put = try session.put(x)
            #expect(put.deduplicated, "the loose blob this process just published is found, not packed again")
            try session.close()
            let shelf = try #require(try store.packShelf())
            let records = try shelf.packIDs().flatMap { try shelf.verify($0.id).records.map(\.record.digest) }
            #expect(records == [Digest(hashing: y)])
        }
    }
}
