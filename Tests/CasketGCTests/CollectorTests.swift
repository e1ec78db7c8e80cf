@_spi(Maintenance) import Casket
import CasketGC
import CasketTestSupport
import Foundation
import Testing

/// What the sweep removes and keeps, dry runs, reports, and fsck.
@Suite("Collector and fsck", .serialized)
struct CollectorTests {
    /// A store with: 3 live keys, 2 unreferenced old blobs, 1 unreferenced young blob, an old temp file,
    /// a young temp file, an old stray file, a zero-length blob file, and a blob in both forms.
    static func messyStore(_ dir: String) throws -> (store: BlobStore, old: [Digest], young: Digest, twin: Digest) {
        let store = try TestStore.create(in: dir, compression: .lz4)
        let cache = CacheStore(blobs: store)
        let session = try cache.writeSession()
        for i in 0..<3 { try session.set("k\(i)", bytes: TestBytes.random(1000, seed: UInt64(i + 1))) }
        // A compressible live value, kept as LZ4; then the raw form appears too (another writer).
        let twinBytes = TestBytes.compressible(50_000)
        let twinEntry = try session.set("twin", bytes: twinBytes)
        try session.close()
        let twin = twinEntry.blobs[0].digest
        try TestFiles.write(TestStore.rawPath(store.root, twin), twinBytes)
        let longAgo = GCRun.now - 7200
        TestFiles.setMtime(TestStore.compressedPath(store.root, twin), secondsSinceEpoch: longAgo)
        var old: [Digest] = []
        for i in 0..<2 {
            let put = try store.put(TestBytes.random(3000, seed: UInt64(100 + i)))
            TestFiles.setMtime(TestStore.rawPath(store.root, put.digest), secondsSinceEpoch: longAgo)
            old.append(put.digest)
        }
        let young = try store.put(TestBytes.random(500, seed: 999)).digest
        try TestFiles.write(store.root + "/tmp/host.1.0123456789abcdef.tmp", [1, 2, 3])
        TestFiles.setMtime(store.root + "/tmp/host.1.0123456789abcdef.tmp", secondsSinceEpoch: longAgo)
        try TestFiles.write(store.root + "/tmp/host.2.0123456789abcdef.tmp", [1, 2, 3])
        // What a process killed while creating a claim leaves: the unique file behind the link.
        let claimDebris = store.root + "/claims/" + String(repeating: "a", count: 32) + ".0.host.7.0123456789abcdef.tmp"
        try TestFiles.write(claimDebris, [7])
        TestFiles.setMtime(claimDebris, secondsSinceEpoch: longAgo)
        try TestFiles.write(store.root + "/blobs/\(old[0].hex.prefix(2))/stray-file", [9, 9])
        TestFiles.setMtime(store.root + "/blobs/\(old[0].hex.prefix(2))/stray-file", secondsSinceEpoch: longAgo)
        try TestFiles.write(
            store.root + "/blobs/\(old[0].hex.prefix(2))/\(old[0].hex.prefix(2))" + String(repeating: "0", count: 30),
            [])
        return (store, old, young, twin)
    }

    @Test("dry run lists what would go and deletes nothing; the real run removes exactly that")
    func dryRunThenRun() throws {
        try withTemporaryDirectory { dir in
            let (store, old, young, twin) = try Self.messyStore(dir)
            let before = TestFiles.regularFiles(under: store.root + "/blobs") + TestStore.tempFiles(store.root)
            let dry = try GCRun.json(["gc", "--store", store.root, "--grace", "1h", "--dry-run"])
            #expect(dry.status == 0, "\(dry.output)")
            let listed = (dry.object["would_remove"] as? [[String: Any]]) ?? []
            let reasons = listed.compactMap { $0["reason"] as? String }.sorted()
            #expect(
                reasons == ["empty", "older_twin", "stray", "temp", "temp", "unreferenced", "unreferenced"], "\(listed)"
            )
            #expect(GCRun.int(dry.object, "bytes_reclaimed") > 6000)
            #expect(TestFiles.regularFiles(under: store.root + "/blobs") + TestStore.tempFiles(store.root) == before)

            let run = try GCRun.json(["gc", "--store", store.root, "--grace", "1h"])
            #expect(run.status == 0, "\(run.output)")
            #expect(GCRun.int(run.object, "swept") == 2)
            #expect(GCRun.int(run.object, "twins_removed") == 1)
            #expect(GCRun.int(run.object, "temp_files_removed") == 2)
            #expect(TestFiles.names(in: store.root + "/claims").isEmpty)
            #expect(GCRun.int(run.object, "stray_files_removed") == 1)
            #expect(GCRun.int(run.object, "empty_blobs_removed") == 1)
            #expect(GCRun.int(run.object, "bytes_reclaimed") == GCRun.int(dry.object, "bytes_reclaimed"))
            for digest in old { #expect(!store.contains(digest)) }
            #expect(store.contains(young), "younger than the grace: kept")
            // The newer (raw) form stays, the older LZ4 twin is gone; the key still reads.
            #expect(TestFiles.info(TestStore.rawPath(store.root, twin)) != nil)
            #expect(TestFiles.info(TestStore.compressedPath(store.root, twin)) == nil)
            let cache = CacheStore(blobs: store)
            for key in ["k0", "k1", "k2", "twin"] { #expect(throws: Never.self) { _ = try cache.get(key) } }
            #expect(TestStore.tempFiles(store.root) == ["host.2.0123456789abcdef.tmp"])
            // Both runs left a report; --history lists them.
            let history = try Casket.run(["gc", "--store", store.root, "--history"])
            #expect(history.stdout.split(separator: "\n").count == 2, "\(history)")
            #expect(history.stdout.contains("dry-run"))
        }
    }

    @Test("grace 0 is refused (exit 2) unless --offline; offline it sweeps everything unreferenced")
    func graceZero() throws {
        try withTemporaryDirectory { dir in
            let (store, _, young, _) = try Self.messyStore(dir)
            #expect(try Casket.run(["gc", "--store", store.root, "--grace", "0"]).status == 2)
            #expect(throws: CasketError.self) {
                var options = Collector.Options()
                options.grace = 0
                _ = try Collector(store: store, options: options)
            }
            let run = try Casket.run(["gc", "--store", store.root, "--grace", "0", "--offline"])
            #expect(run.status == 0, "\(run)")
            #expect(!store.contains(young))
        }
    }

    @Test("a blob left aside by a killed collector is put back by the next one")
    func asideRestored() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let session = try CacheStore(blobs: store).writeSession()
            let entry = try session.set("k", bytes: TestBytes.random(100, seed: 5))
            try session.close()
            let digest = entry.blobs[0].digest
            let path = TestStore.rawPath(store.root, digest)
            let aside = store.root + "/blobs/\(digest.hex.prefix(2))/.gc-aside.0123456789abcdef.\(digest.hex)"
            #expect(rename(path, aside) == 0)
            let run = try GCRun.json(["gc", "--store", store.root])
            #expect(run.status == 0)
            #expect(GCRun.int(run.object, "restored") == 1)
            #expect(store.contains(digest))
        }
    }

    @Test("fsck: a flipped byte is quarantined, a missing blob and a malformed line are listed, exit 5")
    func fsck() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let session = try CacheStore(blobs: store).writeSession()
            var digests: [Digest] = []
            for i in 0..<4 {
                digests.append(
                    try session.set("k\(i)", bytes: TestBytes.random(4000, seed: UInt64(i + 7))).blobs[0].digest)
            }
            try session.close()
            let clean = try Casket.run(["fsck", "--store", store.root])
            #expect(clean.status == 0, "\(clean)")

            try TestFiles.flipByte(TestStore.rawPath(store.root, digests[0]), at: 1234)
            try FileManager.default.removeItem(atPath: TestStore.rawPath(store.root, digests[1]))
            try TestFiles.append(store.root + "/index/broken.jsonl", Array("{\"key\":\"x\",\"ts\":\"soon\"}\n".utf8))
            let out = try GCRun.json(["fsck", "--store", store.root])
            #expect(out.status == 5, "\(out.output)")
            #expect(out.object["clean"] as? Bool == false)
            let corrupt = (out.object["corrupt"] as? [[String: Any]]) ?? []
            #expect(corrupt.count == 1)
            let quarantined = try #require(corrupt.first?["quarantined_as"] as? String)
            #expect(FileManager.default.fileExists(atPath: quarantined))
            #expect(quarantined.contains("/quarantine/"))
            #expect(TestFiles.info(TestStore.rawPath(store.root, digests[0])) == nil, "moved out of blobs/")
            let missing = (out.object["missing"] as? [[String: Any]]) ?? []
            let missingKeys = Set(missing.compactMap { $0["key"] as? String })
            // k0's blob is now missing too (quarantined): the next writer of that payload stores it again.
            #expect(missingKeys == ["k0", "k1"])
            #expect(((out.object["malformed"] as? [[String: Any]]) ?? []).count == 1)

            // A sample checks only that many files; the index checks still run.
            let sampled = try GCRun.json(["fsck", "--store", store.root, "--sample", "1"])
            #expect(GCRun.int(sampled.object, "blobs_checked") == 1)
            #expect(sampled.status == 5)
        }
    }
}
