import Casket
import CasketTestSupport
import Foundation
import Testing

/// The keyed cache through the Swift API, in one process: index format, winner rule, reader robustness,
/// incremental refresh, compaction.
@Suite("Keyed cache")
struct KeyedCacheTests {
    static func cache(_ dir: String, inlineMax: Int = 0) throws -> CacheStore {
        CacheStore(
            blobs: try BlobStore.create(
                at: dir + "/store", config: StoreConfig(durability: .none, inlineMax: inlineMax, packMax: 0)))
    }

    static func line(_ key: String, ts: Int64, hash: Digest? = nil, deleted: Bool = false) -> String {
        if deleted { return "{\"key\":\"\(key)\",\"ts\":\(ts),\"deleted\":true}\n" }
        let h = hash ?? Digest(hashing: Array(key.utf8))
        return
            "{\"key\":\"\(key)\",\"ts\":\(ts),\"value\":{\"#type\":\"Bytes\",\"blob\":\"\(h)\",\"size\":1},\"blobs\":[[\"\(h)\",1]]}\n"
    }

    @Test("set, get, contains, keys, delete and re-add through a write session")
    func basicOperations() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            let session = try cache.writeSession()
            try session.set("a", bytes: Array("alpha".utf8))
            try session.set("b/../../etc/passwd", bytes: Array("path-like keys are only keys".utf8))
            #expect(try cache.keys() == ["a", "b/../../etc/passwd"])
            #expect(try cache.get("a") == Array("alpha".utf8))
            try session.delete("a")
            #expect(try !cache.contains("a"))
            #expect(throws: CasketError.self) { try cache.get("a") }
            try session.set("a", bytes: Array("again".utf8))
            #expect(try cache.get("a") == Array("again".utf8))
            try session.close()
            // A fresh reader (another handle on the folder) sees the same.
            let other = try CacheStore.open(at: dir + "/store")
            #expect(try other.get("a") == Array("again".utf8))
            #expect(try other.keys().count == 2)
            // The writer's file ends with a seal line.
            let files = TestFiles.names(in: dir + "/store/index")
            #expect(files.count == 1)
            let text = try String(contentsOfFile: dir + "/store/index/" + files[0], encoding: .utf8)
            #expect(text.hasSuffix("\"sealed\":true,\"ts\":" + text.split(separator: ":").last!))
        }
    }

    @Test("the winner does not depend on file names or listing order", arguments: 0..<6)
    func winnerIsIndependentOfListing(permutation: Int) throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            // Three writers, same key: the greatest (ts, writer, line) wins; ties on ts go to the greater writer.
            let lines = [
                ("w-a", Self.line("k", ts: 100) + Self.line("k", ts: 300, hash: .empty)),
                ("w-b", Self.line("k", ts: 300, hash: Digest(hashing: [1]))),
                ("w-c", Self.line("k", ts: 200, deleted: true)),
            ]
            let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
            for index in orders[permutation] {
                try TestFiles.write(dir + "/store/index/\(lines[index].0).jsonl", Array(lines[index].1.utf8))
            }
            let winner = try #require(try cache.entry("k"))
            #expect(winner.origin == .init(writer: "w-b", line: 1))
            #expect(winner.blobs[0].digest == Digest(hashing: [1]))
        }
    }

    @Test("a delete and a re-add resolve by time, whichever file holds them")
    func deleteThenReAdd() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            try TestFiles.write(
                dir + "/store/index/z.jsonl", Array((Self.line("k", ts: 1) + Self.line("k", ts: 3)).utf8))
            try TestFiles.write(dir + "/store/index/a.jsonl", Array(Self.line("k", ts: 2, deleted: true).utf8))
            #expect(try cache.contains("k"))
            try TestFiles.append(dir + "/store/index/a.jsonl", Array(Self.line("k", ts: 4, deleted: true).utf8))
            #expect(try !cache.contains("k"))
        }
    }

    @Test("a truncated last line is ignored silently; a malformed middle line is skipped and reported")
    func readerRobustness() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            let good = Self.line("good", ts: 5)
            let badHash =
                "{\"key\":\"evil\",\"ts\":6,\"value\":{\"#type\":\"Bytes\",\"blob\":\"../../etc/passwd\",\"size\":1},\"blobs\":[[\"../../etc/passwd\",1]]}\n"
            let text =
                "not json at all\n" + good + badHash + "\n   \n" + "{\"key\":\"no-ts\"}\n" + Self.line("also", ts: 7)
                + "{\"key\":\"partial\",\"ts\":8,\"val"
            try TestFiles.write(dir + "/store/index/w.jsonl", Array(text.utf8))
            #expect(try cache.keys() == ["also", "good"])
            let issues = cache.issues
            #expect(issues.map(\.line) == [1, 3, 6])
            #expect(issues.allSatisfy { $0.file.hasSuffix("/index/w.jsonl") })
            #expect(issues[1].description.contains("../../etc/passwd"))
            // The unfinished line completes later: the reader picks it up then, exactly once.
            try TestFiles.append(
                dir + "/store/index/w.jsonl", Array("ue\":{\"#type\":\"Json\",\"content\":1},\"blobs\":[]}\n".utf8))
            #expect(try cache.keys() == ["also", "good", "partial"])
            #expect(cache.issues.count == 3)
        }
    }

    @Test("refresh reads only the bytes appended since the last read")
    func incrementalRefresh() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            var text = ""
            for i in 0..<20_000 { text += Self.line("key\(i)", ts: Int64(i + 1)) }
            try TestFiles.write(dir + "/store/index/big.jsonl", Array(text.utf8))
            #expect(try cache.keys().count == 20_000)
            #expect(cache.bytesReadByLastRefresh == Int64(text.utf8.count))
            try cache.refresh()
            #expect(cache.bytesReadByLastRefresh == 0)
            let more = Self.line("late", ts: 1_000_000)
            try TestFiles.append(dir + "/store/index/big.jsonl", Array(more.utf8))
            #expect(try cache.contains("late"))
            #expect(cache.bytesReadByLastRefresh == Int64(more.utf8.count))
        }
    }

    @Test("values of several blobs: get refuses them, entry lists every blob once")
    func multiBlobValues() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            let a = try cache.blobs.put(TestBytes.random(1000, seed: 1))
            let b = try cache.blobs.put(TestBytes.random(2000, seed: 2))
            let node: (PutResult) -> JSONValue = { r in
                .object(
                    JSONObject([
                        ("#type", .string("MemmapArray")), ("blob", .string(r.digest.hex)),
                        ("size", .int(r.size)), ("dtype", .string("uint8")), ("shape", .array([.int(r.size)])),
                    ]))
            }
            let tree = JSONValue.object(
                JSONObject([
                    ("#type", .string("Auto")),
                    (
                        "content",
                        .object(
                            JSONObject([
                                ("x", node(a)), ("y", node(b)), ("again", node(a)),
                                (
                                    "meta",
                                    .object(
                                        JSONObject([
                                            ("#type", .string("Json")),
                                            (
                                                "content",
                                                .object(JSONObject([("blob", .string("not a hash, user data"))]))
                                            ),
                                        ]))
                                ),
                            ]))
                    ),
                ]))
            let session = try cache.writeSession()
            let entry = try session.set("tree", value: tree)
            #expect(entry.blobs == [BlobRef(digest: a.digest, size: 1000), BlobRef(digest: b.digest, size: 2000)])
            let error = #expect(throws: CasketError.self) { try cache.get("tree") }
            #expect(error?.code == .unsupportedValue)
            #expect(try cache.entry("tree")?.value == tree)
        }
    }

    @Test("inline payloads: small values live in the entry, no blob is written")
    func inlinePayloads() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir, inlineMax: 64)
            let session = try cache.writeSession()
            let entry = try session.set("small", bytes: Array("tiny".utf8))
            #expect(entry.blobs.isEmpty)
            try session.set("big", bytes: TestBytes.random(65))
            #expect(try cache.get("small") == Array("tiny".utf8))
            #expect(try cache.blobs.statistics().blobs == 1)
        }
    }

    @Test("a writer whose file is folded away by compaction writes its line again, in a new file")
    func writerNoticesCompaction() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            let session = try cache.writeSession()
            try session.set("first", bytes: [1, 2, 3])
            let before = session.writerID
            // Fold the writer's unsealed, still-open file (idle 0: as if it were abandoned).
            let report = try Compactor(store: cache, idleSeconds: 0).run()
            #expect(report.filesFolded == 1)
            try session.set("second", bytes: [4, 5, 6])
            #expect(session.writerID != before)
            try session.close()
            let fresh = try CacheStore.open(at: dir + "/store")
            #expect(try fresh.keys() == ["first", "second"])
        }
    }

    @Test("compaction keeps every winner, drops losers, and keeps tombstones still needed")
    func compactionKeepsWinners() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            for w in 0..<4 {
                let session = try cache.writeSession()
                for i in 0..<50 { try session.set("k\(i)", bytes: TestBytes.random(100, seed: UInt64(i))) }
                if w == 3 { for i in 0..<10 { try session.delete("k\(i)") } }
                try session.close()
            }
            // A live writer's recent, unsealed file is not folded; its key shadows a folded tombstone.
            let live = try cache.writeSession()
            try live.set("k0", bytes: [9])
            let before = try CacheStore.open(at: dir + "/store").entries()
            let report = try Compactor(store: cache, idleSeconds: 3600).run()
            #expect(report.filesFolded == 4)
            #expect(report.filesKept == 1)
            #expect(report.entriesRead == 210)
            // Tombstones younger than the idle limit all stay (a racing writer may re-append a losing line).
            #expect(report.tombstonesDropped == 0)
            let after = try CacheStore.open(at: dir + "/store")
            #expect(try after.entries() == before)
            #expect(try after.indexStatistics().entries == 51)  // 40 sets + 10 tombstones + live k0
            try live.close()
            // Once old: k1...k9's go; k0's is kept, since the live writer's file has k0.
            let later = try Compactor(store: cache, idleSeconds: 0).run()
            #expect(later.tombstonesDropped == 9)
            #expect(try CacheStore.open(at: dir + "/store").entries() == before)
        }
    }

    @Test("compaction leaves files with malformed lines alone; an idle file's unfinished last line is dropped once")
    func compactionSparesDamagedFiles() throws {
        try withTemporaryDirectory { dir in
            let cache = try Self.cache(dir)
            try TestFiles.write(dir + "/store/index/a.jsonl", Array((Self.line("a", ts: 1) + "oops\n").utf8))
            try TestFiles.write(dir + "/store/index/b.jsonl", Array((Self.line("b", ts: 1) + "{\"key\"").utf8))
            try TestFiles.write(dir + "/store/index/c.jsonl", Array(Self.line("c", ts: 1).utf8))
            try TestFiles.write(dir + "/store/index/d.jsonl", Array(Self.line("d", ts: 1).utf8))
            try TestFiles.write(dir + "/store/index/e.jsonl", Array((Self.line("e", ts: 1) + "{\"ke").utf8))
            // e.jsonl was written just now: its writer may still finish the line, so it stays, unreported.
            let compactor = Compactor(store: cache, idleSeconds: 3600)
            for name in ["a", "b", "c", "d"] {
                TestFiles.setMtime(
                    dir + "/store/index/\(name).jsonl", secondsSinceEpoch: Int(Date().timeIntervalSince1970) - 7200)
            }
            let report = try compactor.run()
            #expect(report.filesWithProblems == [dir + "/store/index/a.jsonl"])
            #expect(report.partialTailsDropped == [PartialTail(path: dir + "/store/index/b.jsonl", bytes: 6)])
            #expect(report.filesFolded == 3)
            let names = Set(TestFiles.names(in: dir + "/store/index"))
            #expect(names.isSuperset(of: ["a.jsonl", "e.jsonl"]) && !names.contains("b.jsonl"))
            #expect(try cache.keys() == ["a", "b", "c", "d", "e"])
            // Reported once: the next compaction has nothing to say about b.
            let again = try compactor.run()
            #expect(again.partialTailsDropped.isEmpty && again.filesWithProblems == [dir + "/store/index/a.jsonl"])
        }
    }
}
