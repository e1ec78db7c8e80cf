import Casket
import CasketTestSupport
import Foundation
import Testing

@testable import CasketMigration

#if canImport(Glibc)
import Glibc
#endif

/// The one rule for paths a source's own files name, and what the migrator does at its edges, on
/// hand-written caches (no Python needed).
@Suite("migration source confinement")
struct ConfinedSourceTests {
    static func write(_ path: String, _ text: String) throws { try TestFiles.write(path, Array(text.utf8)) }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    @Test("the rule: a relative path of plain names, nothing else")
    func rule() throws {
        for good in ["a", "data/x.data", "data/pkl:k[0]-1a2b.pkl", "...", "a..b/c", ".cache_type", "d/.hidden"] {
            #expect(try ConfinedFolder.components(of: good) == good.split(separator: "/").map(String.init))
        }
        let bad: [(String, String)] = [
            ("", "empty path"), ("/etc/passwd", "absolute"), ("//x", "absolute"), ("..", "'..'"),
            ("../x", "'..'"), ("data/../../x", "'..'"), ("data/..", "'..'"), ("data//x", "empty or '.'"),
            ("./data/x", "empty or '.'"), ("data/./x", "empty or '.'"), ("data/", "empty or '.'"),
            ("data/x\u{0}.pkl", "NUL"),
        ]
        for (path, words) in bad {
            let error = #expect(throws: CasketError.self) { try ConfinedFolder.components(of: path) }
            #expect(error?.code == .unsafePath, "\(path)")
            #expect(error?.message.contains(words) == true, "\(path): \(String(describing: error))")
        }
    }

    @Test("exca 0.1: a .key file or payload that is a symlink is not read")
    func flatLayout() throws {
        try withTemporaryDirectory { work in
            let cache = work + "/cache"
            try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
            let secret = TestBytes.random(512, seed: 77)
            try TestFiles.write(work + "/secret.npy", secret)
            try Self.write(work + "/secret.key", "evil:key")
            try Self.write(cache + "/.cache_type", "NumpyArray")
            try Self.write(cache + "/good-1.key", "good")
            try TestFiles.write(cache + "/good-1.npy", TestBytes.pattern(256))
            try Self.write(cache + "/evil-2.key", "evil:payload")
            try FileManager.default.createSymbolicLink(
                atPath: cache + "/evil-2.npy", withDestinationPath: work + "/secret.npy")
            try FileManager.default.createSymbolicLink(
                atPath: cache + "/evil-3.key", withDestinationPath: work + "/secret.key")
            let store = work + "/store"
            let out = try Casket.run(["migrate", cache, "--into", store, "--reclaim", "--json"])
            #expect(out.status == 0, "\(out)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
            let notMigrated = json["not_migrated"] as? [[String: Any]] ?? []
            let entry = notMigrated.first { $0["key"] as? String == "evil:payload" }
            #expect(entry?["code"] as? String == "unsafe_path", "\(out.stdout)")
            let reason = entry?["reason"] as? String ?? ""
            #expect(reason.contains("'evil-2.npy' is a symbolic link"), "\(reason)")
            let warnings = json["warnings"] as? [String] ?? []
            #expect(warnings.contains { $0.hasPrefix("evil-3.key") && $0.contains("symbolic link") }, "\(warnings)")
            let cacheStore = try CacheStore.open(at: store)
            #expect(try cacheStore.keys() == ["good"])
            var blobs = Set<Digest>()
            try cacheStore.blobs.forEachBlob { (file) throws(CasketError) in blobs.insert(file.digest) }
            blobs.formUnion(try TestStore.packedDigests(cacheStore.blobs))
            #expect(blobs == [Digest(hashing: TestBytes.pattern(256))])
            #expect(try TestFiles.read(work + "/secret.npy") == secret)
            #expect(Self.exists(cache + "/evil-2.npy") && Self.exists(cache + "/evil-3.key"))
        }
    }

    @Test("reclaim deletes a name only while it is the file that was verified", arguments: ["symlink", "copy"])
    func swappedAfterVerification(swap: String) throws {
        try withTemporaryDirectory { work in
            let cache = work + "/cache"
            try FileManager.default.createDirectory(atPath: cache + "/data", withIntermediateDirectories: true)
            let bytes = TestBytes.random(4096, seed: 5)
            try TestFiles.write(cache + "/data/h-1.data", bytes)
            try Self.write(
                cache + "/h-1-info.jsonl",
                ##"{"filename":"data/h-1.data","offset":0,"shape":[4096],"dtype":"uint8","#type":"MemmapArray","#key":"a"}"##
                    + "\n")
            try TestFiles.write(work + "/outside.data", bytes)
            let migrator = Migrator(source: cache, destination: work + "/store")
            let plan = try migrator.plan()
            let run = try migrator.run(plan)
            #expect(run.keysMigrated == 1)
            // Between the migration and the reclaim, the data file's name comes to name another file with
            // the same bytes: a symlink to an outside file, or a fresh copy.
            // (Moved aside, not deleted: a deleted file's inode number may be given to the next file.)
            #expect(rename(cache + "/data/h-1.data", work + "/aside.data") == 0)
            if swap == "symlink" {
                try FileManager.default.createSymbolicLink(
                    atPath: cache + "/data/h-1.data", withDestinationPath: work + "/outside.data")
            } else {
                try TestFiles.write(cache + "/data/h-1.data", bytes)
            }
            let report = try migrator.reclaim(plan, run: run)
            #expect(report.reclaimedShards.isEmpty)
            let reason = report.keptShards.first?.reason ?? "(not kept)"
            #expect(reason.contains(swap == "symlink" ? "symbolic link" : "replaced"), "\(reason)")
            #expect(Self.exists(cache + "/data/h-1.data") && Self.exists(cache + "/h-1-info.jsonl"))
            #expect(try TestFiles.read(work + "/outside.data") == bytes)
        }
    }
}
