import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A host whose clock runs ahead must not freeze a key (docs/FORMAT.md 5.4): a write made after reading
/// the key's current winner is stamped later than it, so `set` and `rm` take effect.
@Suite("clock skew: a later write wins over a line from the future")
struct ClockSkewTests {
    static let day: Int64 = 86_400 * 1_000_000_000
    static let year: Int64 = 365 * day

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Appends a line as another host (its own index file) whose clock is `ts`.
    static func foreignLine(_ store: String, key: String, ts: Int64, blob: (Digest, Int)? = nil) throws {
        let line: String
        if let (digest, size) = blob {
            let node = "{\"#type\":\"Bytes\",\"blob\":\"\(digest.hex)\",\"size\":\(size)}"
            line = "{\"key\":\"\(key)\",\"ts\":\(ts),\"value\":\(node),\"blobs\":[[\"\(digest.hex)\",\(size)]]}"
        } else {
            line = "{\"key\":\"\(key)\",\"ts\":\(ts),\"deleted\":true}"
        }
        try TestFiles.append(store + "/index/node-b-1-0000abcd.jsonl", Array((line + "\n").utf8))
    }

    /// `casket get KEY -o FILE`: the bytes, or `nil` with the output when it fails.
    static func get(_ store: String, _ key: String) throws -> ([UInt8]?, ProcessOutput) {
        let file = store + "/../got-" + key
        unlink(file)
        let out = try CLI.run(["get", "--store", store, key, "-o", file])
        return (out.status == 0 ? try TestFiles.read(file) : nil, out)
    }

    @Test("casket set and rm take effect after a line from a host one day or one year ahead", arguments: [day, year])
    func cliWritesWin(ahead: Int64) throws {
        let dir = try TemporaryDirectory()
        let store = dir.child("store")
        #expect(try CLI.run(["init", "--durability", "none", store]).status == 0)
        let old = TestBytes.random(1000, seed: 1)
        let future = TestBytes.random(1000, seed: 2)
        let new = TestBytes.random(1000, seed: 3)
        for (name, bytes) in [("old", old), ("future", future), ("new", new)] {
            try TestFiles.write(dir.child(name), bytes)
        }
        #expect(try CLI.run(["blob", "put", "--store", store, dir.child("future")]).status == 0)
        for key in ["set-after-set", "rm-after-set", "set-after-rm"] {
            #expect(try CLI.run(["set", "--store", store, key, dir.child("old")]).status == 0)
        }
        let skewed = Self.now() + ahead
        let blob = (Digest(hashing: future), future.count)
        try Self.foreignLine(store, key: "set-after-set", ts: skewed, blob: blob)
        try Self.foreignLine(store, key: "rm-after-set", ts: skewed, blob: blob)
        try Self.foreignLine(store, key: "set-after-rm", ts: skewed)
        #expect(try Self.get(store, "set-after-set").0 == future, "the premise: the skewed line wins")

        let set = try CLI.run(["set", "--store", store, "--json", "set-after-set", dir.child("new")])
        #expect(set.status == 0, "\(set)")
        #expect(try Self.get(store, "set-after-set").0 == new)
        let rm = try CLI.run(["rm", "--store", store, "rm-after-set"])
        #expect(rm.status == 0, "\(rm)")
        let (bytes, gone) = try Self.get(store, "rm-after-set")
        #expect(bytes == nil && gone.status == 1 && gone.stderr.contains("is not in the store"), "\(gone)")
        let readd = try CLI.run(["set", "--store", store, "set-after-rm", dir.child("new")])
        #expect(readd.status == 0, "\(readd)")
        #expect(try Self.get(store, "set-after-rm").0 == new)
    }

    @Test("a winner stamped with the greatest ts is refused with a clear message, not silently kept")
    func greatestTimestampRefused() throws {
        let dir = try TemporaryDirectory()
        let store = dir.child("store")
        #expect(try CLI.run(["init", "--durability", "none", store]).status == 0)
        try TestFiles.write(dir.child("f"), [1, 2, 3])
        try Self.foreignLine(store, key: "k", ts: Int64.max)
        for arguments in [["set", "k", dir.child("f")], ["rm", "--force", "k"]] {
            let out = try CLI.run([arguments[0], "--store", store, "--json"] + arguments.dropFirst())
            #expect(out.status == 4, "\(out)")
            #expect(out.stdout.contains("\"code\":\"clock_skew\""), "\(out)")
            #expect(out.stdout.contains("the greatest a timestamp can be"), "\(out)")
        }
    }

    @Test("WriteSession set and delete win over a line from the future that the session has read")
    func apiWritesWin() throws {
        try withTemporaryDirectory { dir in
            let cache = CacheStore(blobs: try TestStore.create(in: dir))
            let root = cache.blobs.root
            let session = try cache.writeSession()
            try session.set("a", bytes: [1])
            try session.set("b", bytes: [1])
            #expect(try cache.keys() == ["a", "b"])
            let future = try cache.blobs.put([9, 9])
            try Self.foreignLine(root, key: "a", ts: Self.now() + Self.year, blob: (future.digest, 2))
            try Self.foreignLine(root, key: "b", ts: Self.now() + Self.day)
            try session.close()
            // A session reads the index at its first write (docs/FORMAT.md 5.4).
            let later = try cache.writeSession()
            let entry = try later.set("a", bytes: [2])
            try later.set("b", bytes: [3])
            try later.set("c", bytes: [4])
            try later.delete("c")
            #expect(entry.timestamp > Self.now() + Self.year - Self.day)
            let fresh = CacheStore(blobs: try BlobStore.open(at: root))
            #expect(try fresh.get("a") == [2])
            #expect(try fresh.get("b") == [3])
            #expect(try fresh.contains("c") == false)
            try later.close()
            try Self.foreignLine(root, key: "a", ts: Self.now() + 2 * Self.year, blob: (future.digest, 2))
            let last = try cache.writeSession()
            try last.delete("a")
            try last.close()
            #expect(try CacheStore(blobs: try BlobStore.open(at: root)).contains("a") == false)
        }
    }
}
