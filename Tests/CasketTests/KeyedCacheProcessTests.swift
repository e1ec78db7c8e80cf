import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The keyed cache with real, separate processes: the incident's 16 writers, separate readers, kill -9.
@Suite("Keyed cache, real processes", .serialized)
struct KeyedCacheProcessTests {
    static func wallClock() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }

    @Test("16 writers set the same 200 keys at the same moment, plus one of other keys: 1.00x, one winner")
    func sixteenWriters() throws {
        try withTemporaryDirectory { dir in
            // Loose blobs: one file per payload whatever the writers (writers that pack may each pack a
            // copy, which GC's repacking makes one: docs/FORMAT.md 3.7).
            let store = try BlobStore.create(
                at: dir + "/store", config: StoreConfig(durability: .none, packMax: 0))
            let helper = try Casket.helper()
            let size = 16 << 10
            let start = Self.wallClock() + 1_500_000_000  // every writer starts at this instant
            var children: [Child] = []
            for _ in 0..<16 {
                children.append(
                    try Child(
                        executable: helper, arguments: ["set-many", store.root, "rec/", "200", "\(size)", "\(start)"]))
            }
            children.append(
                try Child(
                    executable: helper, arguments: ["set-many", store.root, "solo/", "12", "\(size)", "\(start)"]))
            for child in children {
                let out = child.wait()
                #expect(out.status == 0, "\(out)")
            }
            let cache = CacheStore(blobs: store)
            let stats = try cache.indexStatistics()
            #expect(stats.keys == 212)
            #expect(stats.entries == 16 * 200 + 12)
            #expect(stats.duplicateEntries == 15 * 200)
            let blobs = try store.statistics()
            // Inflation 1.00x: bytes on disk equal the unique payload bytes.
            #expect(blobs.blobs == 212)
            #expect(blobs.blobBytes == Int64(212 * size))
            #expect(blobs.blobBytes == stats.liveBytes)
            #expect(TestStore.tempFiles(store.root).isEmpty)
            // Every key reads back verified, with the bytes its writers computed.
            for key in try cache.keys() {
                let bytes = try cache.get(key)
                #expect(bytes.count == size)
            }
            // Separate reader processes resolve identical winners.
            let first = try runProgram(helper, ["winners", store.root])
            #expect(first.status == 0)
            #expect(first.stdout.split(separator: "\n").count == 212)
            for _ in 0..<3 {
                let again = try runProgram(helper, ["winners", store.root])
                #expect(again.stdout == first.stdout)
            }
        }
    }

    @Test("kill -9 of writers mid-append, 20 rounds: the store opens, no committed entry is lost")
    func killWriters() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let helper = try Casket.helper()
            var committed: [String: String] = [:]
            for round in 0..<20 {
                let logs = (0..<2).map { dir + "/log-\(round)-\($0)" }
                let writers = try logs.enumerated().map { index, log in
                    try Child(
                        executable: helper, arguments: ["set-loop", store.root, "r\(round)w\(index)/", "3000"],
                        stdoutFile: log)
                }
                usleep(UInt32.random(in: 20_000...150_000))
                for writer in writers {
                    writer.signal(SIGKILL)
                    _ = writer.wait()
                }
                for log in logs {
                    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                    for line in text.split(separator: "\n") {
                        let parts = line.split(separator: " ")
                        if parts.count == 2 { committed[String(parts[0])] = String(parts[1]) }
                    }
                }
                // The store always opens and every entry reported committed is there, with its blob.
                let cache = try CacheStore.open(at: store.root)
                let entries = try cache.entries()
                let byKey = Dictionary(uniqueKeysWithValues: entries.map { ($0.key, $0) })
                for (key, hash) in committed {
                    let entry = try #require(byKey[key], "round \(round): committed key \(key) lost")
                    #expect(entry.blobs.first?.digest.hex == hash)
                    #expect(cache.blobs.contains(try Digest(validating: hash)))
                }
                #expect(cache.issues.isEmpty, "a torn line may only be the last one: \(cache.issues)")
            }
            #expect(committed.count > 20)
            #expect(TestStore.problems(store).isEmpty)
        }
    }
}
