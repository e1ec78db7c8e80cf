import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Pack files (docs/FORMAT.md 3.7-3.8) with real files and real processes: the helper killed with SIGKILL
/// mid-record and at a random instant, its packs read and sealed by this process; the conformance
/// vectors of `Tools/python/conformance/packs`, written by each side, sealed byte-identically.
@Suite("packs: records, sealed indexes, writers killed mid-record")
struct PackTests {
    static let vectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/python/conformance/packs").path

    /// A new process's view of a store's packs.
    static func shelf(_ root: String) throws -> PackShelf { try #require(try BlobStore.open(at: root).packShelf()) }

    static func vectorNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: vectors)) ?? []).filter {
            FileManager.default.fileExists(atPath: vectors + "/" + $0 + "/expected.json")
        }.sorted()
    }

    @Test("the vectors cover both writers, torn tails and a damaged record")
    func vectorsPresent() {
        let required: Set = [
            "swift-lz4", "python-lz4", "python-raw", "torn-tail", "torn-header", "zero-tail", "damaged-record",
        ]
        #expect(required.isSubset(of: Set(PackTests.vectorNames())))
    }

    @Test("a vector scans, seals byte-identically and reads back", arguments: PackTests.vectorNames())
    func vector(_ name: String) throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let folder = PackTests.vectors + "/" + name
            let expected = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json")))
                    as? [String: Any])
            let id = try #require(expected["pack"] as? String)
            try FileManager.default.copyItem(
                atPath: folder + "/" + id + ".pack", toPath: store.root + "/packs/" + id + ".pack")
            let shelf = try PackTests.shelf(store.root)
            let (records, covered) = try shelf.verify(id)
            let listed = try #require(expected["records"] as? [[String: Any]])
            #expect(covered == Int64(try #require(expected["covered"] as? Int)))
            #expect(records.count == listed.count)
            for (found, want) in zip(records, listed) {
                #expect(found.record.digest.hex == want["digest"] as? String)
                #expect(Int(found.record.form.rawValue) == want["form"] as? Int)
                #expect(found.record.size == Int64(want["size"] as? Int ?? -1))
                #expect(found.record.stored == Int64(want["stored"] as? Int ?? -1))
                #expect(found.record.offset == Int64(want["offset"] as? Int ?? -1))
                #expect((found.flaw == nil) == (want["sound"] as? Bool))
            }
            let sound = Set(records.filter { $0.flaw == nil }.map(\.record.digest))
            #expect(try shelf.seal(id, durable: false) == .sealed(records: sound.count))
            #expect(
                try TestFiles.read(store.root + "/packs/" + id + ".idx") == TestFiles.read(folder + "/expected.idx"),
                "Swift's seal writes the bytes Python's does")
            let reader = try PackTests.shelf(store.root)
            for (record, flaw) in records {
                if flaw == nil {
                    let bytes = try #require(try reader.read(record.digest))
                    #expect(Digest(hashing: bytes) == record.digest)
                    #expect(try reader.find(record.digest)?.record == record)
                } else {
                    #expect(try reader.find(record.digest) == nil, "a record that fails its hash is not indexed")
                }
            }
        }
    }

    @Test("raw, LZ4 and empty records; a duplicate is not written; open then sealed packs are read")
    func roundTrip() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, compression: .lz4)
            let writer = try store.packWriter()
            let values = [
                [], [1], TestBytes.random(3000), TestBytes.compressible(8000), [UInt8](repeating: 7, count: 64),
            ]
            var records: [PackRecord] = []
            for value in values {
                records.append(
                    try value.withUnsafeBytes { try writer.append($0, digest: Digest(hashing: value)) }.record)
            }
            #expect(records.map(\.form) == [.raw, .raw, .raw, .lz4, .lz4])
            let id = try #require(writer.openPackID)
            let size = try #require(TestFiles.info(store.root + "/packs/" + id + ".pack")).size
            _ = try values[3].withUnsafeBytes { try writer.append($0, digest: Digest(hashing: values[3])) }
            #expect(TestFiles.info(store.root + "/packs/" + id + ".pack")?.size == size, "no duplicate record")
            let reader = try PackTests.shelf(store.root)
            for value in values {
                #expect(try reader.read(Digest(hashing: value)) == value, "scanned in the open pack")
            }
            try writer.seal()
            #expect(TestFiles.names(in: store.root + "/packs").sorted() == [id + ".idx", id + ".pack"])
            #expect(try reader.packIDs().map(\.sealed) == [true])
            let fresh = try PackTests.shelf(store.root)
            for value in values { #expect(try fresh.read(Digest(hashing: value)) == value, "found through the index") }
            #expect(try fresh.read(Digest(hashing: [9, 9])) == nil)
        }
    }

    @Test("a damaged index or record is an error naming the file and what is wrong")
    func damage() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let writer = try store.packWriter()
            let first: [UInt8] = Array("first".utf8)
            let second: [UInt8] = Array("second payload".utf8)
            _ = try first.withUnsafeBytes { try writer.append($0, digest: Digest(hashing: first)) }
            let (id, record) = try second.withUnsafeBytes { try writer.append($0, digest: Digest(hashing: second)) }
            try writer.seal()
            let pack = store.root + "/packs/" + id + ".pack"
            var bytes = try TestFiles.read(pack)
            bytes[Int(record.offset) + PackRecord.headerSize + 2] ^= 0x20
            chmod(pack, 0o644)
            try TestFiles.write(pack, bytes)
            let flipped = #expect(throws: CasketError.self, "a flipped byte is never data") {
                try PackTests.shelf(store.root).read(Digest(hashing: second))
            }
            #expect(flipped?.code == .corrupt)
            #expect(
                flipped?.message.contains("pack '\(pack)' is damaged at offset \(record.offset)") == true,
                "\(String(describing: flipped))")
            #expect(try PackTests.shelf(store.root).read(Digest(hashing: first)) == first)
            let index = store.root + "/packs/" + id + ".idx"
            var indexBytes = try TestFiles.read(index)
            indexBytes[1100] ^= 1
            chmod(index, 0o644)
            try TestFiles.write(index, indexBytes)
            let refused = #expect(throws: CasketError.self, "a damaged index is never used") {
                try PackTests.shelf(store.root).read(Digest(hashing: first))
            }
            #expect(refused?.code == .corrupt)
            #expect(refused?.message == "pack index '\(index)' is damaged: its checksum does not match")
        }
    }

    /// Waits for a line of the child's output file that starts with `word`.
    static func line(startingWith word: String, in path: String) throws -> [String] {
        for _ in 0..<600 {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if let found = text.split(separator: "\n").first(where: { $0.hasPrefix(word) }) {
                return found.split(separator: " ").map(String.init)
            }
            usleep(10_000)
        }
        throw CasketError(.io, "no '\(word)' line in \(path)")
    }

    @Test("a writer killed mid-record: its live pack is not sealed; then another process seals what is whole")
    func killedMidRecord() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let out = dir + "/out"
            let child = try Child(executable: try CLI.helper(), arguments: ["pack-torn", store.root], stdoutFile: out)
            defer { child.signal(SIGKILL) }
            let id = try PackTests.line(startingWith: "torn", in: out)[1]
            let shelf = try PackTests.shelf(store.root)
            #expect(try shelf.find(Digest(hashing: TestBytes.random(1))) == nil)
            #expect(try shelf.packIDs().map(\.sealed) == [false])
            #expect(try shelf.seal(id, durable: false) == .writerAlive)
            child.signal(SIGKILL)
            _ = child.wait()
            #expect(try shelf.seal(id, durable: false) == .sealed(records: 3), "the torn fourth record is left out")
            #expect(try shelf.seal(id, durable: false) == .alreadySealed)
            let (records, covered) = try shelf.verify(id)
            #expect(records.count == 3 && records.allSatisfy { $0.flaw == nil })
            #expect(covered == records[2].record.end)
            #expect(try #require(TestFiles.info(store.root + "/packs/" + id + ".pack")).size > covered)
            #expect(!FileManager.default.fileExists(atPath: store.root + "/packs/" + id + ".lease"))
            let fresh = try PackTests.shelf(store.root)
            for (record, _) in records {
                #expect(try fresh.read(record.digest).map(Digest.init(hashing:)) == record.digest)
            }
        }
    }

    @Test("a writer killed at a random instant: every record it reported is found after its packs are sealed")
    func killedAnywhere() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let out = dir + "/out"
            let child = try Child(
                executable: try CLI.helper(), arguments: ["pack-loop", store.root, "3000"], stdoutFile: out)
            TestFiles.waitForLines(in: out) { lines in Set(lines.map { $0.split(separator: " ")[0] }).count >= 2 }
            usleep(100_000)
            child.signal(SIGKILL)
            _ = child.wait()
            let acknowledged = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
                .map { $0.split(separator: " ").map(String.init) }.filter { $0.count == 2 }
            #expect(Set(acknowledged.map { $0[0] }).count >= 2, "at least one full pack was sealed by its writer")
            let shelf = try PackTests.shelf(store.root)
            for (id, sealed) in try shelf.packIDs() where !sealed {
                if case .sealed = try shelf.seal(id, durable: false) {} else { Issue.record("\(id) was not sealed") }
            }
            let fresh = try PackTests.shelf(store.root)
            #expect(try fresh.packIDs().allSatisfy(\.sealed))
            for line in acknowledged {
                let digest = try #require(Digest(line[1]))
                #expect(try fresh.find(digest)?.pack == line[0])
                #expect(try fresh.read(digest).map(Digest.init(hashing:)) == digest)
            }
        }
    }

    @Test("a lease lost before the records were flushed fails the next sync: no line may name them")
    func lostLeaseFailsTheSync() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, durability: .group, packMax: 65536)
            let writer = try store.packWriter(buffered: true, leaseTTL: .milliseconds(200))
            let first = [UInt8](repeating: 1, count: 4096)
            _ = try first.withUnsafeBytes { try writer.append($0, digest: Digest(hashing: first)) }
            let id = try #require(writer.openPackID)
            // Another process judged the writer dead and took its lease (the file is gone): the heartbeat
            // notices within a beat, and a lease silent for longer than its TTL is lost anyway.
            try FileManager.default.removeItem(atPath: store.root + "/packs/" + id + ".lease")
            Thread.sleep(forTimeInterval: 0.6)
            let second = [UInt8](repeating: 2, count: 4096)
            let moved = try second.withUnsafeBytes { try writer.append($0, digest: Digest(hashing: second)) }
            #expect(moved.pack != id, "the next record goes to a new pack")
            let error = #expect(throws: CasketError.self) { try writer.sync() }
            #expect(error?.code == .busy)
            #expect(
                error?.message.contains("the lease of pack '\(id)' was lost before its records were flushed") == true)
            try writer.sync()  // reported once; the new pack's record is flushed
            try writer.seal()
        }
    }
}
