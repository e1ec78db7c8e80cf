@_spi(Maintenance) import Casket
import CasketTestSupport
import Testing

@Suite("Mark")
struct MarkTests {
    @Test("the lean mark finds exactly the blobs of live winners, plus every hash in a malformed line")
    func markMatchesWinners() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let cache = CacheStore(blobs: store)
            let a = try cache.writeSession()
            let b = try cache.writeSession()
            for i in 0..<30 {
                try a.set("k\(i % 10)", bytes: TestBytes.random(200, seed: UInt64(i + 1)))
                try b.set("k\(i % 7)", bytes: TestBytes.random(200, seed: UInt64(i + 100)))
                if i % 4 == 0 { try b.delete("k\(i % 10)") }
            }
            try a.close()
            try b.close()
            let expected = Set(try cache.entries().flatMap { $0.blobs.map(\.digest) })
            var mark = try CacheStore.mark(store)
            #expect(mark.live == expected)
            #expect(mark.keys == (try cache.keys().count))
            // A line that cannot be parsed still protects the hashes it names.
            let orphan = try store.put(TestBytes.random(300, seed: 4242)).digest
            try TestFiles.append(
                store.root + "/index/damaged.jsonl",
                Array("{\"key\":\"z\",\"ts\":1,\"value\":{\"blob\":\"\(orphan.hex)\"\n".utf8))
            mark = try CacheStore.mark(store)
            #expect(mark.issues.count == 1)
            #expect(mark.live == expected.union([orphan]))
        }
    }
}
