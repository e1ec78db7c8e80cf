import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A store of version 2 with `pack_max` (docs/FORMAT.md 3.7): small payloads written through a session,
/// the CLI's `set` and `blob put` go to packs, large ones stay loose blobs, and every reader finds both.
@Suite("packed stores: small payloads in packs, read back by other processes")
struct PackedStoreTests {
    @Test("a session packs small payloads, dedups against its pack, seals at close; large stays loose")
    func sessionPacks() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, compression: .lz4, durability: .fsync, packMax: 4096)
            #expect(store.config.version == 2)
            let cache = try CacheStore.open(at: store.root)
            let session = try cache.writeSession()
            let small = (0..<50).map { TestBytes.random(100 + $0, seed: UInt64($0)) }
            for (i, value) in small.enumerated() { try session.set("k\(i)", bytes: value) }
            try session.set("again", bytes: small[3])
            try session.set("compressible", bytes: TestBytes.compressible(4000))
            try session.set("edge", bytes: TestBytes.random(4095, seed: 99))
            try session.set("large", bytes: TestBytes.random(4096, seed: 98))
            let packs = TestFiles.names(in: store.root + "/packs")
            #expect(packs.filter { $0.hasSuffix(".pack") }.count == 1 && packs.contains { $0.hasSuffix(".lease") })
            #expect(TestStore.blobFiles(store.root).count == 1, "only the 4096-byte payload is a blob file")
            let live = try CacheStore.open(at: store.root)
            #expect(try live.get("k7") == small[7], "another reader finds a record of an open pack")
            try session.close()
            #expect(TestFiles.names(in: store.root + "/packs").filter { $0.hasSuffix(".idx") }.count == 1)
            #expect(!TestFiles.names(in: store.root + "/packs").contains { $0.hasSuffix(".lease") })
            let shelf = try #require(try BlobStore.open(at: store.root).packShelf())
            let (records, _) = try shelf.verify(try #require(shelf.packIDs().first?.id))
            #expect(records.count == 52, "50 small, one compressible, the 4095-byte one: 'again' is a dedup")
            #expect(records.contains { $0.record.form == .lz4 })
            let reader = try CacheStore.open(at: store.root)
            for (i, value) in small.enumerated() { #expect(try reader.get("k\(i)") == value) }
            #expect(try reader.get("again") == small[3])
            #expect(try reader.get("compressible") == TestBytes.compressible(4000))
            #expect(try reader.get("large") == TestBytes.random(4096, seed: 98))
        }
    }

    @Test("the CLI packs set and blob put, and get, get --range, blob has, fsck and gc serve packed payloads")
    func cliPacks() throws {
        try withTemporaryDirectory { dir in
            let root = dir + "/store"
            #expect(try CLI.run(["init", root, "--pack-max", "65536", "--durability", "none"]).status == 0)
            let text = Array("packed through the CLI\n".utf8)
            try TestFiles.write(dir + "/small", text)
            #expect(try CLI.run(["set", "--store", root, "k", dir + "/small"]).status == 0)
            let put = try CLI.run(["blob", "put", "--store", root, dir + "/small"])
            #expect(put.status == 0 && put.stdout.hasPrefix(Digest(hashing: text).hex), "\(put)")
            #expect(TestStore.blobFiles(root).isEmpty)
            #expect(try CLI.run(["get", "--store", root, "k"]).stdout == "packed through the CLI\n")
            #expect(try CLI.run(["get", "--store", root, "k", "--range", "7:14"]).stdout == "through")
            let has = try CLI.run(["blob", "has", "--store", root, Digest(hashing: text).hex, "--json"])
            #expect(has.status == 0 && has.stdout.contains("\"packed\":true"), "\(has)")
            let gc = try CLI.run(["gc", "--store", root, "--grace", "1s"])
            #expect(gc.status == 0, "\(gc)")
            #expect(try CLI.run(["get", "--store", root, "k"]).stdout == "packed through the CLI\n", "GC kept it")
            let fsck = try CLI.run(["fsck", "--store", root])
            #expect(fsck.status == 0 && fsck.stdout.contains("1 pack records in 1 packs"), "\(fsck)")
            // A flipped byte in the record: fsck reports the pack, the offset and the hash (exit 5).
            let pack = try #require(TestFiles.names(in: root + "/packs").first { $0.hasSuffix(".pack") })
            var bytes = try TestFiles.read(root + "/packs/" + pack)
            bytes[PackRecord.headerSize + 3] ^= 1
            chmod(root + "/packs/" + pack, 0o644)
            try TestFiles.write(root + "/packs/" + pack, bytes)
            let damaged = try CLI.run(["fsck", "--store", root])
            #expect(damaged.status == 5, "\(damaged)")
            #expect(damaged.stdout.contains("pack '\(root)/packs/\(pack)': record at offset 0"), "\(damaged)")
            let get = try CLI.run(["get", "--store", root, "k"])
            #expect(get.status == 1 && get.stderr.contains("is damaged at offset 0"), "\(get)")
        }
    }

    @Test("a link in the place of packs/ is refused by writers, readers and fsck; nothing goes through it")
    func linkedPacks() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, packMax: 4096)
            try FileManager.default.removeItem(atPath: store.root + "/packs")
            try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: false)
            try FileManager.default.createSymbolicLink(
                atPath: store.root + "/packs", withDestinationPath: dir + "/elsewhere")
            let session = try CacheStore.open(at: store.root).writeSession()
            let refused = #expect(throws: CasketError.self) { try session.set("k", bytes: [1, 2, 3]) }
            #expect(refused?.code == .unsafePath, "\(String(describing: refused))")
            let get = try CLI.run(["blob", "get", "--store", store.root, Digest(hashing: [1, 2, 3]).hex])
            #expect(get.status == 1 && get.stderr.contains("symbolic link"), "\(get)")
            let fsck = try CLI.run(["fsck", "--store", store.root])
            #expect(fsck.status == 5 && fsck.stdout.contains("packs"), "\(fsck)")
            #expect(TestFiles.names(in: dir + "/elsewhere").isEmpty)
        }
    }

    @Test("GC removes a killed sealer's temp file in packs/ once older than the grace, and nothing else there")
    func packTempFiles() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, packMax: 4096)
            let session = try CacheStore.open(at: store.root).writeSession()
            try session.set("k", bytes: [1, 2, 3])
            try session.close()
            let packs = store.root + "/packs/"
            let old = "node-a.4242.0123456789abcdef.tmp"
            let young = "node-a.4243.0123456789abcdef.tmp"
            try TestFiles.write(packs + old, [0])
            try TestFiles.write(packs + young, [0])
            TestFiles.setMtime(packs + old, secondsSinceEpoch: 1_000_000_000)
            let before = TestFiles.names(in: packs).filter { !$0.hasSuffix(".tmp") }.sorted()
            let gc = try CLI.run(["gc", "--store", store.root, "--grace", "1h"])
            #expect(gc.status == 0, "\(gc)")
            #expect(TestFiles.names(in: packs).sorted() == (before + [young]).sorted())
            #expect(try CacheStore.open(at: store.root).get("k") == [1, 2, 3])
        }
    }

    @Test("a reader of more packs than its soft limit of descriptors allows reads them all (the limit is raised)")
    func morePacksThanDescriptors() throws {
        try withTemporaryDirectory { dir in
            // 64 KiB packs of 200-1,000 byte values: 8,000 values make about 75 packs, each kept open.
            let store = try TestStore.create(in: dir, durability: .none, packMax: 65536, packSize: 65536)
            let helper = try CLI.helper()
            #expect(try runProgram(helper, ["scale-write", store.root, "8000"]).status == 0)
            #expect(try BlobStore.open(at: store.root).packShelf()!.packIDs().count > 64)
            let read = try runProgram(
                "/bin/sh", ["-c", "ulimit -Sn 40 && exec \"$0\" scale-read \"$1\" 8000", helper, store.root])
            #expect(read.status == 0 && read.stdout.contains("read 8000 keys"), "\(read)")
        }
    }

    @Test("a packing writer killed with SIGKILL: every key it reported reads back, from its unsealed pack")
    func killedWriter() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, durability: .fsync, packMax: 65536)
            let log = dir + "/log"
            let child = try Child(
                executable: try CLI.helper(), arguments: ["set-loop", store.root, "w/", "3000"], stdoutFile: log)
            TestFiles.waitForLines(in: log) { $0.count > 10 }
            usleep(100_000)
            child.signal(SIGKILL)
            _ = child.wait()
            let reported = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: " ").map(String.init) }.filter { $0.count == 2 }
            #expect(reported.count > 10, "the writer committed keys before it was killed")
            #expect(TestStore.blobFiles(store.root).isEmpty, "every payload was packed")
            let reader = try CacheStore.open(at: store.root)
            for line in reported {
                let bytes = try reader.get(line[0])
                #expect(Digest(hashing: bytes).hex == line[1], "\(line[0])")
            }
            let shelf = try #require(try BlobStore.open(at: store.root).packShelf())
            #expect(try shelf.packIDs().filter { !$0.sealed }.count == 1)
            // GC seals the dead writer's pack (its lease names a pid that is gone) and sweeps none of it.
            let gc = try CLI.run(["gc", "--store", store.root, "--grace", "1s", "--json"])
            #expect(gc.status == 0 && gc.stdout.contains("\"packs_sealed\":1"), "\(gc)")
            #expect(try PackTests.shelf(store.root).packIDs().allSatisfy(\.sealed))
            let after = try CacheStore.open(at: store.root)
            for line in reported { #expect(try Digest(hashing: after.get(line[0])).hex == line[1]) }
            let fsck = try CLI.run(["fsck", "--store", store.root])
            #expect(fsck.status == 0, "\(fsck)")
        }
    }
}

/// Group commit in the Swift `WriteSession` (durability `group`, docs/FORMAT.md 5.5).
@Suite("group commit: a session's lines are written once per batch")
struct GroupCommitTests {
    @Test("lines wait for the batch; flush, a full batch, the batch's age and close commit them")
    func batches() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, durability: .group, packMax: 65536)
            let session = try CacheStore.open(at: store.root).writeSession()
            try session.set("a", bytes: [1, 2, 3])
            try session.set("big", bytes: TestBytes.random(100_000))  // a blob file, published before its line
            #expect(try !CacheStore.open(at: store.root).contains("a"), "not committed yet")
            #expect(TestFiles.names(in: store.root + "/index").isEmpty)
            try session.flush()
            #expect(try CacheStore.open(at: store.root).get("a") == [1, 2, 3])
            #expect(try CacheStore.open(at: store.root).get("big") == TestBytes.random(100_000))
            try session.set("b", bytes: [4])
            // Its age commits the batch with no other write (the session's timer): 200 ms, or later under load.
            let due = ContinuousClock.now + .seconds(20)
            while try !CacheStore.open(at: store.root).contains("b") && ContinuousClock.now < due { usleep(20_000) }
            #expect(try CacheStore.open(at: store.root).contains("b"))
            try session.set("c", bytes: [5])
            session.batchAge = .seconds(3600)  // a slow machine must not commit part of the next batch by age
            for i in 0..<WriteSession.groupLines { try session.set("n\(i)", bytes: [UInt8(i % 256)]) }
            // A full batch is handed over at once and written behind (no flush, no timer: its age is an hour).
            let written = ContinuousClock.now + .seconds(20)
            while try !CacheStore.open(at: store.root).contains("n\(WriteSession.groupLines - 2)")
                && ContinuousClock.now < written
            {
                usleep(5_000)
            }
            #expect(try CacheStore.open(at: store.root).contains("n\(WriteSession.groupLines - 2)"), "a full batch")
            try session.delete("a")
            try session.close()
            let reader = try CacheStore.open(at: store.root)
            #expect(try !reader.contains("a") && reader.get("n999") == [UInt8(999 % 256)])
            let text = try String(contentsOfFile: store.root + "/index/" + session.writerID + ".jsonl", encoding: .utf8)
            #expect(text.split(separator: "\n").count == WriteSession.groupLines + 6, "every line once, and the seal")
        }
    }

    @Test("a writer killed with SIGKILL loses no key it had committed")
    func killed() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, durability: .group, packMax: 65536)
            let log = dir + "/log"
            let child = try Child(
                executable: try CLI.helper(), arguments: ["set-flush", store.root, "g/", "2000"], stdoutFile: log)
            TestFiles.waitForLines(in: log) { $0.count >= 3 }
            usleep(100_000)
            child.signal(SIGKILL)
            _ = child.wait()
            let committed = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap {
                Int($0)
            }
            let last = try #require(committed.last, "the writer committed batches before it was killed")
            let reader = try CacheStore.open(at: store.root)
            for i in 0...last { #expect(try reader.get("g/\(i)").count == 2000 + i % 1024, "g/\(i)") }
            let fsck = try CLI.run(["fsck", "--store", store.root])
            #expect(fsck.status == 0, "\(fsck)")
        }
    }
}
