@_spi(Maintenance) import Casket
import CasketGC
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Compaction against another compaction, a kill -9 and a garbage collection, with real `casket`
/// processes (FORMAT.md 5.6, GC.md "Mark").
@Suite("Compaction races", .serialized)
struct CompactionRaceTests {
    static func set(_ key: String, ts: Int64, content: String) -> String {
        "{\"key\":\"\(key)\",\"ts\":\(ts),\"value\":{\"#type\":\"Json\",\"content\":\"\(content)\"},\"blobs\":[]}\n"
    }

    static func tombstone(_ key: String, ts: Int64) -> String { "{\"key\":\"\(key)\",\"ts\":\(ts),\"deleted\":true}\n" }

    static let seal = "{\"sealed\":true,\"ts\":9999999}\n"

    /// Starts `casket ARGS` in `count` processes released at one instant.
    static func race(_ arguments: [String], count: Int, in directory: String) throws -> [ProcessOutput] {
        let barrier = try StartBarrier(in: directory)
        let casket = try CLI.executable()
        let children = try (0..<count).map { id in
            try Child(executable: "/bin/sh", arguments: ["-c", barrier.script(id: id), "sh", casket] + arguments)
        }
        try barrier.release(waitingFor: count)
        return children.map { $0.wait() }
    }

    @Test("two casket compact at once, 12 rounds: no deleted key comes back, every live key keeps its value")
    func twoCompactionsNeverResurrect() throws {
        for round in 0..<12 {
            try withTemporaryDirectory { dir in
                let store = try TestStore.create(in: dir)
                // Key d<i> is set in file i and deleted in file i+1: whichever way two compactions split the
                // files, the set and its tombstone can end up in different compactions.
                let files = 12
                for i in 0..<files {
                    var text = Self.set("d\(i)", ts: 1000 + Int64(i), content: "dead \(i)")
                    text += Self.tombstone("d\((i + files - 1) % files)", ts: 5000 + Int64(i))
                    text += Self.set("live\(i)", ts: 10 + Int64(i), content: "value \(i)")
                    text += Self.seal
                    try TestFiles.write(store.indexDirectory + "/w\(i)-1-0000000\(i % 10).jsonl", Array(text.utf8))
                }
                let outputs = try Self.race(
                    ["compact", "--store", store.root, "--idle", "0"], count: 2, in: dir + "/barrier")
                for output in outputs { #expect(output.status == 0, "round \(round): \(output)") }
                let cache = CacheStore(blobs: try BlobStore.open(at: store.root))
                let keys = try cache.keys()
                #expect(keys == (0..<files).map { "live\($0)" }.sorted(), "round \(round): \(keys)")
                for i in 0..<files {
                    let content = try cache.entry("live\(i)")?.value?["content"]?.stringValue
                    #expect(content == "value \(i)", "round \(round)")
                }
            }
        }
    }

    @Test("a line re-appended by a writer that raced with the fold still loses to a young tombstone")
    func reappendedLineStillLoses() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let now = Int64(Date().timeIntervalSince1970 * 1e9)
            // A writer set k a moment ago; a deleter removed it just after. Both files are closed.
            let setLine = Self.set("k", ts: now - 1_000_000_000, content: "old value")
            try TestFiles.write(store.indexDirectory + "/w-1-00000001.jsonl", Array((setLine + Self.seal).utf8))
            try TestFiles.write(
                store.indexDirectory + "/d-1-00000002.jsonl", Array((Self.tombstone("k", ts: now) + Self.seal).utf8))
            let compact = try CLI.run(["compact", "--store", store.root])
            #expect(compact.status == 0, "\(compact)")
            // The writer found its file folded away and wrote its line again (FORMAT.md 5.5 step 3).
            try TestFiles.write(store.indexDirectory + "/w-1-00000003.jsonl", Array(setLine.utf8))
            let show = try CLI.run(["show", "--store", store.root, "k"])
            #expect(show.status == 1 && show.stderr.contains("key 'k' is not in the store"), "\(show)")
        }
    }

    @Test("kill -9 of a compaction mid-write: its .tmp output is removed by the next compaction and by gc once old")
    func killedCompactionLeavesNoDebrisForEver() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            // A large index, so that the output takes a while to write.
            var text = ""
            text.reserveCapacity(4_000_000)
            for i in 0..<40_000 { text += Self.set("key/\(i)", ts: 100 + Int64(i), content: "value \(i)") }
            try TestFiles.write(store.indexDirectory + "/big-1-00000000.jsonl", Array((text + Self.seal).utf8))
            var removedBy: [String] = []
            for cleaner in ["gc", "compact"] {
                var leftover: String?
                for _ in 0..<10 where leftover == nil {
                    let child = try CLI.start(["compact", "--store", store.root, "--idle", "0"])
                    while child.isRunning && leftover == nil {
                        leftover = TestFiles.names(in: store.indexDirectory).first { $0.hasSuffix(".jsonl.tmp") }
                    }
                    child.signal(SIGKILL)
                    let out = child.wait()
                    if !out.signalled { leftover = nil }
                }
                let name = try #require(leftover, "no kill landed while the output was being written")
                #expect(TestFiles.names(in: store.indexDirectory).contains(name))
                // Nothing is lost: the folded lines are still in the .folding file.
                #expect(try CacheStore(blobs: try BlobStore.open(at: store.root)).keys().count == 40_000)
                // Young, it stays (a running compaction may be writing it); old, it goes.
                TestFiles.setMtime(store.indexDirectory + "/" + name, secondsSinceEpoch: GCRun.now - 7200)
                if cleaner == "gc" {
                    let gc = try GCRun.json(["gc", "--store", store.root, "--grace", "1h"])
                    #expect(gc.status == 0 && GCRun.int(gc.object, "temp_files_removed") >= 1, "\(gc.output)")
                } else {
                    let compact = try CLI.run(["compact", "--store", store.root, "--json"])
                    #expect(compact.status == 0 && compact.stdout.contains("\"temp_files_removed\":1"), "\(compact)")
                }
                if !TestFiles.names(in: store.indexDirectory).contains(name) { removedBy.append(cleaner) }
            }
            #expect(removedBy == ["gc", "compact"])
            #expect(!TestFiles.names(in: store.indexDirectory).contains { $0.hasSuffix(".tmp") })
            #expect(try CacheStore(blobs: try BlobStore.open(at: store.root)).keys().count == 40_000)
        }
    }

    @Test("an idle file whose last line was cut short (full disk) is folded once, the tail reported once")
    func partialTailReportedOnce() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let path = store.indexDirectory + "/w-1-00000000.jsonl"
            try TestFiles.write(path, Array((Self.set("a", ts: 5, content: "x") + "{\"key\":\"b\",\"ts\":6,\"va").utf8))
            TestFiles.setMtime(path, secondsSinceEpoch: GCRun.now - 7200)
            let first = try CLI.run(["compact", "--store", store.root])
            #expect(first.status == 0, "\(first)")
            #expect(
                first.stderr.contains("dropped the unfinished last line of '\(path)' (21 bytes without a newline"),
                "\(first)")
            let second = try CLI.run(["compact", "--store", store.root])
            #expect(second.status == 0 && second.stderr.isEmpty, "\(second)")
            let show = try CLI.run(["show", "--store", store.root, "a"])
            #expect(show.status == 0, "\(show)")
        }
    }

    @Test("gc and compactions racing, 8 rounds: the mark never misses a file, no live key's blob is swept")
    func gcRacingCompactionKeepsLiveBlobs() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            var hashes: [Digest] = []
            for i in 0..<40 {
                let put = try store.put(TestBytes.random(200, seed: UInt64(i + 1)))
                hashes.append(put.digest)
            }
            let old = Int64(GCRun.now - 7200) * 1_000_000_000
            for round in 0..<8 {
                // Every round, new writer files re-set every key, so that each compaction has files to fold.
                for i in 0..<40 {
                    let h = hashes[i].hex
                    let line =
                        "{\"key\":\"k\(i)\",\"ts\":\(1000 * round + i),\"value\":{\"#type\":\"Bytes\",\"blob\":\"\(h)\","
                        + "\"size\":200},\"blobs\":[[\"\(h)\",200]]}\n"
                    try TestFiles.write(
                        store.indexDirectory + "/r\(round)w\(i)-1-00000000.jsonl", Array((line + Self.seal).utf8))
                }
                for digest in hashes {
                    _ = store.files.setModificationTime(store.path(of: digest, compressed: false), old)
                }
                let barrier = try StartBarrier(in: dir + "/barrier\(round)")
                let casket = try CLI.executable()
                let script = { (id: Int, args: [String]) in
                    try Child(executable: "/bin/sh", arguments: ["-c", barrier.script(id: id), "sh", casket] + args)
                }
                let children = [
                    try script(0, ["gc", "--store", store.root, "--grace", "1h"]),
                    try script(1, ["compact", "--store", store.root, "--idle", "0"]),
                    try script(2, ["compact", "--store", store.root, "--idle", "0"]),
                ]
                try barrier.release(waitingFor: 3)
                for (n, output) in children.map({ $0.wait() }).enumerated() {
                    #expect(output.status == 0, "round \(round) child \(n): \(output)")
                }
                for (i, digest) in hashes.enumerated() {
                    #expect(store.contains(digest), "round \(round): the blob of live key k\(i) was swept")
                }
            }
        }
    }

    @Test("GC reports are written through a temp file in gc/, never through tmp/ (which holds blobs' temp files)")
    func reportsNeverUseTmp() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            // Without tmp/ a report can still be saved: it does not go through it.
            #expect(rmdir(store.tmpDirectory) == 0)
            var report = GCReport()
            report.host = "h"
            let saved = try ReportArchive(store: store).save(report, keep: 5)
            #expect(FileManager.default.fileExists(atPath: saved))
            #expect(!FileManager.default.fileExists(atPath: store.tmpDirectory))
            #expect(!TestFiles.names(in: store.gcDirectory).contains { $0.hasSuffix(".tmp") })
        }
    }

    @Test("the systemd unit and the cron line alert on every exit code that means 'not done'")
    func schedulersAlertOnNotDone() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let unit = try String(contentsOfFile: root + "/Tools/systemd/casket-gc.service", encoding: .utf8)
        let success = unit.split(separator: "\n").filter { $0.hasPrefix("SuccessExitStatus") }
        #expect(success.isEmpty, "\(success)")
        let cron = try String(contentsOfFile: root + "/Tools/cron/casket-gc.cron", encoding: .utf8)
        #expect(!cron.contains("[ $rc -eq 3 ]"), "cron treats exit 3 as done")
    }
}
