import Casket
import CasketTestSupport
import Foundation
import Testing

/// The shelf-wide directory of sealed packs (`PackDirectory`): lookups through it find every packed payload,
/// in packs it covers, in packs sealed after it was built, and in open packs, and never answer from a pack
/// that is gone.
@Suite("pack directory: lookups across many packs")
struct PackDirectoryTests {
    /// Writes `count` payloads of 3,000 bytes, from `first` on, in 64 KiB packs: about 21 to a pack.
    static func write(_ store: BlobStore, from first: Int, count: Int, close: Bool = true) throws -> (
        WriteSession, [Digest]
    ) {
        let session = try CacheStore(blobs: store).writeSession()
        var digests: [Digest] = []
        for i in first..<first + count {
            digests.append(try session.set("k\(i)", bytes: TestBytes.random(3000, seed: UInt64(i + 1))).blobs[0].digest)
        }
        if close { try session.close() }
        return (session, digests)
    }

    @Test("every payload of 48 packs is found, then of packs sealed later and an open one; a gone pack is not")
    func findsAcrossPacks() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, packMax: 65536, packSize: 64 << 10)
            var (_, digests) = try PackDirectoryTests.write(store, from: 0, count: 1050)
            let reader = try BlobStore.open(at: store.root)
            let shelf = try #require(try reader.packShelf())
            #expect(try shelf.packIDs().filter(\.sealed).count >= 40)
            for (i, digest) in digests.enumerated() {
                let found = try #require(try shelf.find(digest), "k\(i)")
                #expect(found.record.digest == digest && found.record.size == 3000)
            }
            #expect(try shelf.find(Digest(hashing: Array("absent".utf8))) == nil)
            #expect(try reader.readAll(digests[517]) == TestBytes.random(3000, seed: 518))

            // Sealed after the directory was built: 5 packs (below the rebuild threshold), then 20 more.
            for (first, count) in [(1050, 105), (1155, 420)] {
                digests += try PackDirectoryTests.write(store, from: first, count: count).1
                for (i, digest) in digests.enumerated() {
                    #expect(try shelf.find(digest)?.record.digest == digest, "k\(i)")
                }
            }
            // An open pack (the session is not closed: its last pack has no index).
            let (open, fresh) = try PackDirectoryTests.write(store, from: 2000, count: 10, close: false)
            try open.flush()
            for digest in fresh { #expect(try shelf.find(digest)?.record.digest == digest) }

            // A pack removed from the folder: once listed again, its payloads are found nowhere.
            let gone = try #require(try shelf.find(digests[0])).pack
            for suffix in [".pack", ".idx"] {
                try FileManager.default.removeItem(atPath: "\(store.root)/packs/\(gone)\(suffix)")
            }
            _ = try shelf.packIDs()
            #expect(try shelf.find(digests[0]) == nil)
            #expect(try shelf.find(digests[1049])?.record.digest == digests[1049])
            try open.close()
        }
    }
}
