@testable import Casket
import CasketTestSupport
import Foundation
import Testing

/// The reader's winner table holds where each winning line is, not its value tree (docs/DESIGN.md 3.5):
/// a value is parsed again from its line, so a line that moved or changed between the read of the index
/// and the read of the line must be found again, never returned wrong.
@Suite("Lean reader")
struct LeanReaderTests {
    static func json(_ key: String, ts: Int64, content: String) -> String {
        "{\"key\":\"\(key)\",\"ts\":\(ts),\"value\":{\"#type\":\"Json\",\"content\":\"\(content)\"},\"blobs\":[]}\n"
    }

    @Test("a compaction between the read of the index and the read of a line: every value is found again")
    func compactionBeforeLineRead() throws {
        try withTemporaryDirectory { dir in
            let blobs = try BlobStore.create(
                at: dir + "/store", config: StoreConfig(durability: .none, inlineMax: 64))
            let writer = CacheStore(blobs: blobs)
            let first = try writer.writeSession()
            try first.set("a", bytes: Array("one".utf8))
            try first.set("d", bytes: Array("to be deleted".utf8))
            try first.set("big", bytes: TestBytes.pattern(1000))
            try first.close()
            let second = try writer.writeSession()
            try second.set("a", bytes: Array("uno".utf8))
            try second.delete("d")
            try second.close()
            let before = Set(TestFiles.names(in: blobs.layout.index))

            let reader = CacheStore(blobs: try BlobStore.open(at: dir + "/store"))
            #expect(try reader.keys() == ["a", "big"])
            var compactions = 0
            reader.beforeLineRead = {
                guard compactions == 0 else { return }
                compactions += 1
                let other = CacheStore(blobs: try! BlobStore.open(at: dir + "/store"))
                let report = try! Compactor(store: other, idleSeconds: 0).run()
                #expect(report.filesFolded == 2)
            }
            // "a" is inline (3 bytes), "big" a blob: both winners' files are gone when their lines are read.
            #expect(try reader.get("a") == Array("uno".utf8))
            #expect(compactions == 1)
            #expect(Set(TestFiles.names(in: blobs.layout.index)).isDisjoint(with: before))
            #expect(try reader.get("big") == TestBytes.pattern(1000))
            #expect(try reader.entry("d") == nil)
            #expect(try reader.keys() == ["a", "big"])
        }
    }

    @Test("lines swapped in place (same file, same length): the line read is checked, the right value returned")
    func linesSwappedInPlace() throws {
        try withTemporaryDirectory { dir in
            let blobs = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let path = blobs.layout.index + "/w1-1-00000001.jsonl"
            let one = Self.json("k1", ts: 100, content: "value-1")
            let two = Self.json("k2", ts: 100, content: "value-2")
            try FileManager.default.createDirectory(atPath: blobs.layout.index, withIntermediateDirectories: true)
            try TestFiles.write(path, Array((one + two).utf8))

            let reader = CacheStore(blobs: blobs)
            #expect(try reader.keys() == ["k1", "k2"])
            reader.beforeLineRead = {
                // Same inode, same size: only the bytes at k1's offset now belong to k2.
                let handle = FileHandle(forWritingAtPath: path)!
                handle.write(Data((two + one).utf8))
                try! handle.close()
            }
            #expect(try reader.entry("k1")?.value?["content"]?.stringValue == "value-1")
            #expect(try reader.entry("k1")?.origin.line == 2)
            #expect(try reader.entry("k2")?.value?["content"]?.stringValue == "value-2")
        }
    }

    @Test("the listing comes from the table: sizes, blob counts, types and times as the entries have them")
    func listingMatchesEntries() throws {
        try withTemporaryDirectory { dir in
            let cache = CacheStore(
                blobs: try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none, inlineMax: 16)))
            let session = try cache.writeSession()
            try session.set("inline", bytes: Array("small".utf8))
            try session.set("blob", bytes: TestBytes.pattern(5000))
            try session.set("gone", bytes: Array("x".utf8))
            try session.delete("gone")
            try session.close()
            var listed: [CacheStore.Listing] = []
            try cache.forEachListing { listed.append($0) }
            let expected = try cache.entries().map { (entry) in
                CacheStore.Listing(
                    key: entry.key, timestamp: entry.timestamp, size: entry.payloadBytes, blobs: entry.blobs.count,
                    type: entry.value?["#type"]?.stringValue ?? "")
            }
            #expect(listed == expected)
            #expect(listed.map(\.key) == ["blob", "inline"])
            #expect(listed.map(\.size) == [5000, 5])
            #expect(listed.map(\.blobs) == [1, 0])
        }
    }
}
