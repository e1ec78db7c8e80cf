import Casket
import CasketTestSupport
import Foundation
import Testing

/// A session under group commit writes its pack records in runs (docs/FORMAT.md 3.7). A run whose write
/// fails goes, whole, to a new pack; a run that cannot be written anywhere fails the batch, so no line
/// ever names a record that is not in a pack.
@Suite("failed run of pack records")
struct PackRunFailureTests {
    static func packs(_ root: String) -> [String] {
        TestFiles.names(in: root + "/packs").filter { $0.hasSuffix(".pack") }
    }

    @Test("a run cut by RLIMIT_FSIZE moves to a new pack: every key reads back, no torn tail is extended")
    func runMovesToANewPack() throws {
        try withTemporaryDirectory { dir in
            let root = try TestStore.create(in: dir, durability: .group, packMax: 65536).root
            // 1.5 MiB: the first 1 MiB run fits a pack, the second is cut part-way and moves on.
            let out = try runProgram(try CLI.helper(), ["pack-run-fail", root, "\(3 << 19)", "1200"])
            #expect(out.stdout == "ok\n", "\(out)")
            #expect(PackRunFailureTests.packs(root).count >= 3, "the cut runs went to new packs")
            for name in PackRunFailureTests.packs(root) {
                let size = try #require(TestFiles.info(root + "/packs/" + name)).size
                #expect(size <= 3 << 19, "\(name): never written past the failure")
            }
            let cache = try CacheStore.open(at: root)
            #expect(try cache.keys().count == 1200)
            for i in 0..<1200 { #expect(try cache.get("r\(i)").count == 4096, "r\(i)") }
            #expect(cache.issues.isEmpty, "\(cache.issues)")
        }
    }

    @Test("a run that fails in its new pack too fails the batch: no line names its records")
    func lostRunFailsTheBatch() throws {
        try withTemporaryDirectory { dir in
            let root = try TestStore.create(in: dir, durability: .group, packMax: 65536).root
            // 512 KiB: no 1 MiB run fits any pack.
            let out = try runProgram(try CLI.helper(), ["pack-run-fail", root, "\(1 << 19)", "600"])
            #expect(out.stdout.hasPrefix("error: "), "\(out)")
            #expect(out.stdout.contains("File too large"), "the cause is kept: \(out)")
            let cache = try CacheStore.open(at: root)
            for key in try cache.keys() { #expect(try cache.get(key).count == 4096, "\(key): its record is in a pack") }
        }
    }
}
