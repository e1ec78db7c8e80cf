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
            #expect(mark.live == DigestSet(expected))
            #expect(mark.keys == (try cache.keys().count))
            // A line that cannot be parsed still protects the hashes it names.
            let orphan = try store.put(TestBytes.random(300, seed: 4242)).digest
            try TestFiles.append(
                store.root + "/index/damaged.jsonl",
                Array("{\"key\":\"z\",\"ts\":1,\"value\":{\"blob\":\"\(orphan.hex)\"\n".utf8))
            mark = try CacheStore.mark(store)
            #expect(mark.issues.count == 1)
            #expect(mark.live == DigestSet(expected.union([orphan])))
        }
    }
}

@Suite("Mark table")
struct MarkTableTests {
    /// Lines written by hand, one compacted file carrying origins (`w`, `n`), so that every tie of the winner
    /// rule (FORMAT.md 5.4) occurs: equal times broken by writer bytes, then by line; a tombstone winning and
    /// then losing; keys that differ only in Unicode normalisation; values of several blobs replaced by one.
    @Test("the mark keeps the winner the full reader keeps, key by key, through every tie and 5,000 keys")
    func markAgreesWithFullReader() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            var digests: [Digest] = []
            for i in 0..<40 { digests.append(try store.put(TestBytes.random(100 + i, seed: UInt64(i + 1))).digest) }
            func line(_ key: String, ts: Int64, blobs: [Int]?, origin: (String, Int)? = nil) -> String {
                var text = "{\"key\":\"\(key)\",\"ts\":\(ts)"
                if let blobs {
                    let list = blobs.map { "[\"\(digests[$0].hex)\",\(100 + $0)]" }.joined(separator: ",")
                    text += ",\"value\":{\"#type\":\"Bytes\"},\"blobs\":[\(list)]"
                } else {
                    text += ",\"deleted\":true"
                }
                if let origin { text += ",\"w\":\"\(origin.0)\",\"n\":\(origin.1)" }
                return text + "}\n"
            }
            let nfc = "caf\u{E9}"
            let nfd = "cafe\u{301}"
            // Writer ids "w-a" < "w-b" < "w-\u{E9}" (0xC3 0xA9) as bytes; an NFD writer id is other bytes.
            let a = [
                line("tie", ts: 10, blobs: [0]), line("tie-line", ts: 20, blobs: [1]),
                line("tie-line", ts: 20, blobs: [2]),
                line(nfc, ts: 5, blobs: [3]), line("gone", ts: 30, blobs: [4, 5, 6]), line("back", ts: 40, blobs: nil),
                line("many", ts: 50, blobs: [7, 8, 9]),
            ]
            let b = [
                line("tie", ts: 10, blobs: [10]), line(nfd, ts: 5, blobs: [11]), line("gone", ts: 31, blobs: nil),
                line("back", ts: 41, blobs: [12]), line("many", ts: 51, blobs: [13]),
            ]
            let compacted = [
                line("tie", ts: 10, blobs: [14], origin: ("w-\u{E9}", 1)),
                line("tie-line", ts: 20, blobs: [15], origin: ("w-a", 1)),
                line("older", ts: 1, blobs: [16], origin: ("w-z", 9)),
                line("tie", ts: 10, blobs: [17], origin: ("w-e\u{301}", 99)),
            ]
            var bulk: [String] = []
            for i in 0..<5000 {
                bulk.append(line("k/\(i)", ts: Int64(100 + i), blobs: [18 + i % 20]))
                if i % 3 == 0 { bulk.append(line("k/\(i)", ts: Int64(100 + i), blobs: [18 + (i + 1) % 20])) }
                if i % 7 == 0 { bulk.append(line("k/\(i)", ts: Int64(99), blobs: nil)) }
            }
            for (name, lines) in [("w-a", a), ("w-b", b), ("compact-1-x", compacted), ("bulk", bulk)] {
                try TestFiles.write(store.root + "/index/\(name).jsonl", Array(lines.joined().utf8))
            }
            let cache = CacheStore(blobs: store)
            let winners = try cache.entries()
            // By bytes: a `[String: _]` would make the NFC and NFD keys one.
            var visited: [IndexKey: [Digest]] = [:]
            let mark = try CacheStore.mark(store) { (key, blobs) throws(CasketError) in visited[IndexKey(key)] = blobs }
            #expect(mark.keys == winners.count)
            #expect(mark.live == DigestSet(winners.flatMap { $0.blobs.map(\.digest) }))
            #expect(visited.count == winners.count)
            for entry in winners {
                #expect(visited[IndexKey(entry.key)] == entry.blobs.map(\.digest), "\(entry.key)")
            }
            // The ties, spelled out: "w-\u{E9}" is the greatest writer id; line 3 beats line 2 of w-a.
            #expect(visited["tie"] == [digests[14]])
            #expect(visited["tie-line"] == [digests[2]])
            #expect(visited[IndexKey(nfc)] == [digests[3]] && visited[IndexKey(nfd)] == [digests[11]])
            #expect(visited["gone"] == nil && visited["back"] == [digests[12]] && visited["many"] == [digests[13]])
            #expect(mark.live.contains(digests[12]) && !mark.live.contains(digests[7]))
        }
    }

    @Test("a digest set holds each hash once, in order, and finds exactly those")
    func digestSet() {
        let digests = (0..<1000).map { Digest(hashing: [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)]) }
        let set = DigestSet(digests + digests.prefix(300))
        #expect(set.count == 1000)
        #expect(set.elements == digests.sorted())
        #expect(digests.allSatisfy(set.contains))
        #expect(!set.contains(Digest(hashing: [1, 2, 3])))
        #expect(DigestSet([Digest]()).count == 0 && !DigestSet([Digest]()).contains(.empty))
    }
}
