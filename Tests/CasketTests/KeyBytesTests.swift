import Casket
import CasketTestSupport
import Foundation
import Testing

/// Keys are byte strings (docs/FORMAT.md, section 5.2, "Keys"): two keys that Swift's `String ==` calls
/// equal (canonical equivalence) but whose UTF-8 differs are two keys, in every table of every command.
@Suite("keys are byte strings")
struct KeyBytesTests {
    /// "café" with a precomposed é (NFC) and with e + U+0301 (NFD): `==` as `String`, not as bytes.
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// The key column of `casket ls`, as bytes.
    static func listed(_ store: String) throws -> [[UInt8]] {
        let ls = try CLI.run(["ls", "--store", store])
        #expect(ls.status == 0, "\(ls)")
        return ls.stdout.split(separator: "\n").map { line in
            Array(line.split(separator: "\t", maxSplits: 1).last.map(String.init)?.utf8 ?? "".utf8)
        }
    }

    static func get(_ store: String, _ key: String, _ out: String) throws -> [UInt8]? {
        let get = try CLI.run(["get", "--store", store, key, "-o", out])
        guard get.status == 0 else { return nil }
        return try TestFiles.read(out)
    }

    @Test("NFC and NFD keys through the CLI: two values, listed twice, kept by compaction and GC")
    func cliKeepsBothForms() throws {
        #expect(Self.nfc == Self.nfd && Self.bytes(Self.nfc) != Self.bytes(Self.nfd), "the premise of the test")
        let dir = try TemporaryDirectory()
        let store = dir.child("store")
        // Loose blobs, which GC sweeps or keeps one by one.
        #expect(try CLI.run(["init", "--durability", "none", "--pack-max", "0", store]).status == 0)
        let a = TestBytes.random(4096, seed: 1)
        let b = TestBytes.random(4096, seed: 2)
        try TestFiles.write(dir.child("a"), a)
        try TestFiles.write(dir.child("b"), b)
        for (key, file) in [(Self.nfc, "a"), (Self.nfd, "b")] {
            let set = try CLI.run(["set", "--store", store, key, dir.child(file)])
            #expect(set.status == 0, "\(set)")
        }
        func check(_ stage: String) throws {
            #expect(try Self.get(store, Self.nfc, dir.child("out-nfc")) == a, "NFC value after \(stage)")
            #expect(try Self.get(store, Self.nfd, dir.child("out-nfd")) == b, "NFD value after \(stage)")
            #expect(try Self.listed(store) == [Self.bytes(Self.nfd), Self.bytes(Self.nfc)], "ls after \(stage)")
        }
        try check("set")
        let early = try CLI.run(["gc", "--store", store, "--grace", "0", "--offline"])
        #expect(early.status == 0 && TestStore.blobFiles(store).count == 2, "GC before compaction: \(early)")
        try check("gc before compaction")
        let compact = try CLI.run(["compact", "--store", store, "--json"])
        #expect(compact.status == 0 && compact.stdout.contains("\"entries_written\":2"), "\(compact)")
        try check("compact")
        let gc = try CLI.run(["gc", "--store", store, "--grace", "0", "--offline", "--json"])
        #expect(gc.status == 0, "\(gc)")
        #expect(TestStore.blobFiles(store).count == 2, "GC keeps the blob of each form")
        try check("gc")
        // Deleting one form leaves the other.
        #expect(try CLI.run(["rm", "--store", store, Self.nfc]).status == 0)
        #expect(try Self.get(store, Self.nfc, dir.child("out-nfc2")) == nil)
        #expect(try Self.get(store, Self.nfd, dir.child("out-nfd2")) == b)
        #expect(try Self.listed(store) == [Self.bytes(Self.nfd)])
    }

    @Test("NFC and NFD keys through the Swift API: entries, keys and winners stay apart")
    func apiKeepsBothForms() throws {
        try withTemporaryDirectory { dir in
            let cache = CacheStore(blobs: try TestStore.create(in: dir))
            let session = try cache.writeSession()
            try session.set(Self.nfc, bytes: [1, 2, 3])
            try session.set(Self.nfd, bytes: [4, 5, 6])
            try session.delete(Self.nfd)
            try session.set(Self.nfd, bytes: [7, 8, 9])
            try session.close()
            let reader = CacheStore(blobs: try BlobStore.open(at: cache.blobs.root))
            #expect(try reader.get(Self.nfc) == [1, 2, 3])
            #expect(try reader.get(Self.nfd) == [7, 8, 9])
            #expect(try reader.keys().map(Self.bytes) == [Self.bytes(Self.nfd), Self.bytes(Self.nfc)])
            #expect(try reader.entries().map { Self.bytes($0.key) } == [Self.bytes(Self.nfd), Self.bytes(Self.nfc)])
            #expect(try reader.indexStatistics().keys == 2)
            #expect(IndexKey(Self.nfc) != IndexKey(Self.nfd))
        }
    }

    @Test("getOrCompute of the NFC and NFD forms computes and stores two keys")
    func computeKeepsBothForms() throws {
        try withTemporaryDirectory { dir in
            let cache = CacheStore(blobs: try TestStore.create(in: dir))
            let board = try ClaimBoard(store: cache.blobs, ttl: .seconds(5))
            var computed: [[UInt8]] = []
            let results = try cache.getOrCompute([Self.nfc, Self.nfd, Self.nfc], board: board) { mine in
                computed = mine.map(Self.bytes)
                return Dictionary(uniqueKeysWithValues: mine.map { (IndexKey($0), Self.bytes($0)) })
            }
            #expect(computed == [Self.bytes(Self.nfd), Self.bytes(Self.nfc)])
            #expect(results.count == 2 && results[IndexKey(Self.nfd)] == Self.bytes(Self.nfd))
            #expect(try cache.get(Self.nfc) == Self.bytes(Self.nfc))
            #expect(try cache.get(Self.nfd) == Self.bytes(Self.nfd))
        }
    }

    @Test("a key that is not UTF-8 text (a lone surrogate, raw invalid bytes) makes its line malformed")
    func nonUnicodeKeysAreMalformed() throws {
        try withTemporaryDirectory { dir in
            let cache = CacheStore(blobs: try TestStore.create(in: dir))
            let lines: [[UInt8]] = [
                Array(#"{"key":"k\ud800","ts":5,"deleted":true}"#.utf8),
                Array(#"{"key":"k\udc00","ts":5,"deleted":true}"#.utf8),
                Array(#"{"key":"k"#.utf8) + [0xFF] + Array(#"","ts":5,"deleted":true}"#.utf8),
                Array(#"{"key":"k"#.utf8) + [0xFE] + Array(#"","ts":6,"deleted":true}"#.utf8),
                Array(#"{"key":"k\ud83d\ude00","ts":7,"deleted":true}"#.utf8),
            ]
            try TestFiles.write(dir + "/store/index/h-1-00000000.jsonl", lines.flatMap { $0 + [0x0A] })
            try cache.refresh()
            let issues = cache.issues
            #expect(issues.map(\.line) == [1, 2, 3, 4], "\(issues)")
            #expect(issues.first?.description.contains("lone surrogate") == true, "\(issues)")
            #expect(issues.dropFirst(2).first?.description.contains("invalid UTF-8") == true, "\(issues)")
            #expect(try cache.indexStatistics().deletedKeys == 1, "only the valid surrogate pair is a key")
        }
    }
}
