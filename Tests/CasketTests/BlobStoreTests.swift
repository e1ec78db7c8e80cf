import Casket
import CasketTestSupport
import Foundation
import Testing

@Suite("BlobStore API")
struct BlobStoreTests {
    enum Kind: String, CaseIterable, Sendable { case random, compressible }

    static func payload(_ kind: Kind, _ size: Int) -> [UInt8] {
        kind == .random ? TestBytes.random(size, seed: UInt64(size) + 11) : TestBytes.compressible(size)
    }

    static let sizes = [0, 1, 100, 64 << 10, (4 << 20) + 17]

    @Test(
        "put bytes, a file and a stream: each reads back exactly, in both compression settings",
        arguments: StoreConfig.Compression.allCases, sizes)
    func roundTrips(compression: StoreConfig.Compression, size: Int) throws {
        try withTemporaryDirectory { dir in
            for kind in Kind.allCases {
                let bytes = Self.payload(kind, size)
                let expected = Digest(hashing: bytes)
                // Three stores so that each put really writes (no dedup between the three paths).
                let viaBytes = try TestStore.create(in: dir, name: "b-\(kind)", compression: compression)
                let viaFile = try TestStore.create(in: dir, name: "f-\(kind)", compression: compression)
                let viaStream = try TestStore.create(in: dir, name: "s-\(kind)", compression: compression)
                let file = dir + "/input-\(kind)"
                try TestFiles.write(file, bytes)

                var results = [try viaBytes.put(bytes), try viaFile.put(fileAt: file)]
                var offset = 0
                var step = 0
                results.append(
                    try viaStream.put(streaming: { (buffer) throws(CasketError) -> Int in
                        // Uneven pieces, never filling the buffer, to exercise the staging loop.
                        step += 1
                        let n = min(bytes.count - offset, buffer.count, [1, 4093, 65_537, 1 << 20][step % 4])
                        bytes[offset..<offset + n].withUnsafeBytes { buffer.copyMemory(from: $0) }
                        offset += n
                        return n
                    }))
                for (result, store) in zip(results, [viaBytes, viaFile, viaStream]) {
                    #expect(result.digest == expected)
                    #expect(result.size == Int64(size))
                    #expect(!result.deduplicated)
                    #expect(try store.readAll(expected) == bytes)
                    let location = try #require(store.locate(expected))
                    #expect(TestFiles.info(location.path)?.mode == 0o444, "published blobs are read-only")
                    #expect(TestFiles.info(location.path)?.size == result.storedBytes)
                    #expect(TestStore.blobFiles(store.root).count == 1)
                    #expect(TestStore.tempFiles(store.root).isEmpty, "tmp/ is empty after a put")
                    if compression == .none || kind == .random || size < 64 {
                        #expect(!result.compressed, "\(kind) \(size) B must stay raw")
                        #expect(store.mappablePath(expected) == location.path)
                    }
                    if compression == .lz4 && kind == .compressible && size >= 64 << 10 {
                        #expect(result.compressed, "compressible payload stored as LZ4 frame")
                        #expect(location.path.hasSuffix(".lz4"))
                        #expect(result.storedBytes < Int64(size) * 9 / 10)
                        #expect(store.mappablePath(expected) == nil)
                        let frame = try TestFiles.read(location.path)
                        #expect(Array(frame.prefix(4)) == [0x04, 0x22, 0x4D, 0x18], "LZ4 frame magic")
                    }
                }
            }
        }
    }

    @Test(
        "a second put of the same payload is a dedup hit: one file, nothing written, mtime freshened",
        arguments: StoreConfig.Compression.allCases, Kind.allCases)
    func dedupFreshens(compression: StoreConfig.Compression, kind: Kind) throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, compression: compression)
            let bytes = Self.payload(kind, 1 << 20)
            let first = try store.put(bytes)
            #expect(!first.deduplicated)
            let path = try #require(store.locate(first.digest)).path
            TestFiles.setMtime(path, secondsSinceEpoch: 1_000_000_000)  // 2001
            let inode = try #require(TestFiles.info(path))

            let file = dir + "/again"
            try TestFiles.write(file, bytes)
            for second in [try store.put(bytes), try store.put(fileAt: file)] {
                #expect(second.deduplicated)
                #expect(second.digest == first.digest)
                #expect(second.compressed == first.compressed)
                #expect(second.storedBytes == first.storedBytes)
            }
            #expect(TestStore.blobFiles(store.root).count == 1)
            #expect(TestStore.tempFiles(store.root).isEmpty)
            let after = try #require(TestFiles.info(path))
            #expect(after.mtimeNanoseconds > inode.mtimeNanoseconds + 1_000_000_000, "freshened to now")
            #expect(after.mtimeNanoseconds > Int64(Date().timeIntervalSince1970 - 60) * 1_000_000_000)
            #expect(after.mode == 0o444)

            // A stream learns its hash only while writing: it must still end as a dedup hit.
            TestFiles.setMtime(path, secondsSinceEpoch: 1_000_000_000)
            let streamed = try store.put(readingDescriptor: try openForReading(file), name: file)
            #expect(streamed.deduplicated)
            #expect(TestStore.blobFiles(store.root).count == 1)
            #expect(TestStore.tempFiles(store.root).isEmpty, "the stream's temp file was removed")
            #expect(try #require(TestFiles.info(path)).mtimeNanoseconds > inode.mtimeNanoseconds + 1_000_000_000)
        }
    }

    /// Opens a file read-only and returns its descriptor (closed when the test process ends).
    func openForReading(_ path: String) throws -> Int32 {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        let fd = dup(handle.fileDescriptor)
        try handle.close()
        return fd
    }

    @Test(
        "a raw writer and an LZ4 writer of the same payload share one blob, in either order",
        arguments: [StoreConfig.Compression.none, .lz4])
    func rawAndCompressedWritersDedupe(first: StoreConfig.Compression) throws {
        try withTemporaryDirectory { dir in
            let second: StoreConfig.Compression = first == .none ? .lz4 : .none
            let bytes = TestBytes.compressible(2 << 20)
            let writerA = try TestStore.create(in: dir, compression: first)
            let a = try writerA.put(bytes)
            #expect(a.compressed == (first == .lz4))
            // The same folder, as a writer configured the other way sees it.
            let writerB = try TestStore.reconfigure(writerA.root, compression: second)
            #expect(writerB.config.compression == second)
            let b = try writerB.put(bytes)
            #expect(b.deduplicated, "the hash is of the uncompressed bytes, whatever the form")
            #expect(b.compressed == a.compressed, "the existing form is kept")
            #expect(TestStore.blobFiles(writerA.root).count == 1)
            // A streaming writer of the other form also ends as a hit and leaves no temp file.
            let file = dir + "/payload"
            try TestFiles.write(file, bytes)
            let c = try writerB.put(fileAt: file)
            #expect(c.deduplicated)
            #expect(TestStore.blobFiles(writerA.root).count == 1)
            #expect(TestStore.tempFiles(writerA.root).isEmpty)
            #expect(try writerA.readAll(a.digest) == bytes)
            #expect(try writerB.readAll(a.digest) == bytes)
        }
    }

    @Test("a reader finds a blob in either form, and in both at once (after a race between forms)")
    func readerFindsEitherForm() throws {
        try withTemporaryDirectory { dir in
            let bytes = TestBytes.compressible(3 << 20)
            let compressedStore = try TestStore.create(in: dir, name: "z", compression: .lz4)
            let rawStore = try TestStore.create(in: dir, name: "r", compression: .none)
            let z = try compressedStore.put(bytes)
            let r = try rawStore.put(bytes)
            #expect(z.compressed && !r.compressed && z.digest == r.digest)
            let digest = z.digest

            // Only the frame: a raw-configured store reads it.
            let framePath = TestStore.compressedPath(compressedStore.root, digest)
            let rawOnlyReader = try TestStore.reconfigure(compressedStore.root, compression: .none)
            #expect(try rawOnlyReader.readAll(digest) == bytes)
            #expect(rawOnlyReader.contains(digest))

            // Both forms at once (as a race leaves them): reads, stat and verify see one blob.
            try FileManager.default.copyItem(atPath: framePath, toPath: TestStore.compressedPath(rawStore.root, digest))
            #expect(TestStore.blobFiles(rawStore.root).count == 2)
            #expect(try rawStore.readAll(digest) == bytes)
            #expect(rawStore.locate(digest)?.compressed == false, "raw form first")
            #expect(try rawStore.statistics().blobs == 1)
            #expect(TestStore.problems(rawStore).isEmpty)
            #expect(try rawStore.put(bytes).deduplicated)
        }
    }

    @Test(
        "the empty payload is a zero-length raw blob that reads back and deduplicates",
        arguments: StoreConfig.Compression.allCases)
    func emptyPayload(compression: StoreConfig.Compression) throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, compression: compression)
            let first = try store.put([UInt8]())
            #expect(first.digest == .empty)
            #expect(first.digest.hex == "99aa06d3014798d86001c324468d497f")
            #expect(!first.compressed)
            let path = TestStore.rawPath(store.root, .empty)
            #expect(TestFiles.info(path)?.size == 0)
            #expect(TestFiles.info(path)?.mode == 0o444)
            #expect(try store.readAll(.empty) == [])
            #expect(store.contains(.empty))
            let file = dir + "/empty"
            try TestFiles.write(file, [])
            #expect(try store.put(fileAt: file).deduplicated, "an empty raw file is not debris for the empty hash")
            #expect(try store.put(readingDescriptor: try openForReading(file), name: file).deduplicated)
            #expect(TestStore.blobFiles(store.root) == [String(Digest.empty.hex.prefix(2)) + "/" + Digest.empty.hex])
            #expect(TestStore.tempFiles(store.root).isEmpty)
        }
    }

    struct Damage: Sendable, CustomTestStringConvertible {
        var compression: StoreConfig.Compression
        var kind: Kind
        var keep: Int  // bytes kept of the blob file
        var testDescription: String { "\(compression) \(kind) truncated to \(keep) B" }
    }

    @Test(
        "a truncated or empty existing blob is replaced by the next put",
        arguments: [
            Damage(compression: .none, kind: .random, keep: 0),
            Damage(compression: .none, kind: .random, keep: 1000),
            Damage(compression: .lz4, kind: .compressible, keep: 0),
            Damage(compression: .lz4, kind: .compressible, keep: 3),
            Damage(compression: .lz4, kind: .random, keep: 12345),
        ])
    func damagedBlobIsReplaced(damage: Damage) throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, compression: damage.compression)
            let bytes = Self.payload(damage.kind, 1 << 20)
            let first = try store.put(bytes)
            let path = try #require(store.locate(first.digest)).path
            TestFiles.truncate(path, to: damage.keep)
            #expect(throws: CasketError.self, "the damage is detected on read") { try store.readAll(first.digest) }
            for replace in [{ try store.put(bytes) }, { try store.put(fileAt: self.write(dir, bytes)) }] {
                let again = try replace()
                #expect(try store.readAll(first.digest) == bytes, "the next put repaired the blob")
                TestFiles.truncate(path, to: damage.keep)
                _ = again
            }
            let repaired = try store.put(bytes)
            #expect(!repaired.deduplicated, "a damaged blob is not a dedup hit")
            #expect(TestFiles.info(path)?.size == repaired.storedBytes)
            #expect(TestFiles.info(path)?.mode == 0o444)
            #expect(TestStore.problems(store).isEmpty)
            #expect(TestStore.tempFiles(store.root).isEmpty)
        }
    }

    func write(_ dir: String, _ bytes: [UInt8]) throws -> String {
        let path = dir + "/input"
        try TestFiles.write(path, bytes)
        return path
    }

    @Test("an empty raw file left beside a compressed writer's blob does not hide the payload")
    func emptyRawDebrisBesideFrame() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, compression: .lz4)
            let bytes = TestBytes.compressible(1 << 20)
            let digest = Digest(hashing: bytes)
            // Debris: a zero-length file under the raw name (a crash of a non-conforming writer, a full disk).
            try FileManager.default.createDirectory(
                atPath: store.root + "/blobs/" + digest.hex.prefix(2), withIntermediateDirectories: true)
            try TestFiles.write(TestStore.rawPath(store.root, digest), [])
            let result = try store.put(bytes)
            #expect(!result.deduplicated)
            #expect(try store.readAll(digest) == bytes, "readers must not stop at the empty raw debris")
            #expect(TestStore.problems(store).isEmpty)
        }
    }
}

@Suite("Large raw blobs (read ahead on a second thread)")
struct LargeBlobTests {
    @Test("a 9 MiB file and an unaligned 8 MiB range of it hash as in memory; a second put is a dedup hit")
    func readAheadHashes() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let bytes = TestBytes.random(9 << 20, seed: 78)
            try TestFiles.write(dir + "/input", bytes)
            let first = try store.put(fileAt: dir + "/input")
            #expect(first.digest == Digest(hashing: bytes) && !first.deduplicated)
            #expect(try store.put(fileAt: dir + "/input").deduplicated)
            let range = try BlobStore.digest(ofFileAt: dir + "/input", offset: 12_345, length: 8 << 20)
            #expect(range == Digest(hashing: Array(bytes[12_345..<(12_345 + (8 << 20))])))
            let stored = try store.put(fileAt: dir + "/input", offset: 12_345, length: 8 << 20)
            #expect(stored.digest == range)
            #expect(try store.readAll(range) == Array(bytes[12_345..<(12_345 + (8 << 20))]))
        }
    }

    @Test(
        "a 9 MiB blob reads back exactly; a flipped byte at its start, middle or end is caught",
        arguments: [0, 4_718_593, 9_437_183])
    func readAheadVerifies(offset: Int) throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let bytes = TestBytes.random(9 << 20, seed: 77)
            let put = try store.put(bytes)
            var back: [UInt8] = []
            try store.read(put.digest) { (chunk) throws(CasketError) in back.append(contentsOf: chunk) }
            #expect(back == bytes)
            let path = TestStore.rawPath(store.root, put.digest)
            try TestFiles.flipByte(path, at: offset)
            let error = #expect(throws: CasketError.self) { try store.verify(put.digest) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains(path) == true)
            // A sink that fails stops the read cleanly (the reader thread is stopped and joined).
            var calls = 0
            let stopped = #expect(throws: CasketError.self) {
                try store.read(put.digest) { (_) throws(CasketError) in
                    calls += 1
                    if calls == 2 { throw CasketError(.io, "sink full") }
                }
            }
            #expect(stopped?.message == "sink full")
        }
    }
}
