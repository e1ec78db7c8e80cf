@_spi(Maintenance) import Casket
import CasketTestSupport
import Foundation
import Testing

/// fsck of a store whose values are in several packs, through the real `casket fsck`: live keys are
/// checked against the records fsck has just verified, and every other blob is looked up as before.
@Suite("fsck of packed keys", .serialized)
struct PackedFsckTests {
    @Test("fsck lists exactly the keys of a removed pack as missing; a damaged record is damage, not missing")
    func removedPackKeysAreMissing() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, packMax: 65536, packSize: 64 << 10)
            let cache = CacheStore(blobs: store)
            let session = try cache.writeSession()
            var digests: [String: Digest] = [:]
            for i in 0..<300 {
                digests["k\(i)"] = try session.set("k\(i)", bytes: TestBytes.random(1000 + i, seed: UInt64(i + 1)))
                    .blobs[0].digest
            }
            // One value as a loose blob (above pack_max): found without any pack.
            digests["big"] = try session.set("big", bytes: TestBytes.random(70_000, seed: 9)).blobs[0].digest
            try session.close()
            let clean = try GCRun.json(["fsck", "--store", store.root])
            #expect(clean.status == 0, "\(clean.output)")
            #expect(GCRun.int(clean.object, "keys") == 301 && GCRun.int(clean.object, "packs") >= 4)

            let shelf = try #require(try store.packShelf())
            var packOf: [String: String] = [:]
            for (key, digest) in digests where key != "big" { packOf[key] = try #require(try shelf.find(digest)).pack }
            let removed = packOf["k0"]!
            let damaged = try #require(packOf["k299"])
            try #require(removed != damaged)
            for suffix in [".pack", ".idx"] {
                try FileManager.default.removeItem(atPath: "\(store.root)/packs/\(removed)\(suffix)")
            }
            // The last byte of k299's record (its payload's end) in another pack.
            let record = try #require(try shelf.find(digests["k299"]!)).record
            try TestFiles.flipByte("\(store.root)/packs/\(damaged).pack", at: Int(record.end) - 1)

            let out = try GCRun.json(["fsck", "--store", store.root])
            #expect(out.status == 5, "\(out.output)")
            let missing = Set(((out.object["missing"] as? [[String: Any]]) ?? []).compactMap { $0["key"] as? String })
            #expect(missing == Set(packOf.filter { $0.value == removed }.keys), "\(out.output.stdout)")
            #expect(!missing.isEmpty && !missing.contains("k299") && !missing.contains("big"))
            let damage = (out.object["damaged_packs"] as? [String]) ?? []
            #expect(
                damage.contains { $0.contains("\(damaged).pack") && $0.contains(digests["k299"]!.hex) }, "\(damage)")
        }
    }
}
