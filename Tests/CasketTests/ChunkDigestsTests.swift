@_spi(Maintenance) import Casket
import CasketTestSupport
import Foundation
import Testing

/// Chunk digests (docs/FORMAT.md 3.6): written by every put, byte-identical to the Python client's, and
/// verified window reads through ``BlobStore/read(_:range:size:to:)``.
@Suite("chunk digests and window reads")
struct ChunkDigestsTests {
    static let chunk = ChunkDigests.chunkSize

    /// `Tools/python/conformance/chunks.json`, which the Python tests check too.
    static func vectors() throws -> [[String: Any]] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/python/conformance/chunks.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any]
        #expect(object?["chunk_size"] as? Int == chunk)
        return try #require(object?["payloads"] as? [[String: Any]])
    }

    static func payload(_ size: Int) -> [UInt8] { (0..<size).map { UInt8(($0 * 131 + 7) % 251) } }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func store(
        _ dir: String, _ name: String, minimum: Int64 = 1 << 20, compression: StoreConfig.Compression = .none
    )
        throws -> BlobStore
    {
        try BlobStore.create(
            at: dir + "/" + name, config: StoreConfig(compression: compression, durability: .none, chunksMin: minimum))
    }

    static func window(_ store: BlobStore, _ digest: Digest, _ range: Range<Int64>) throws -> (
        [UInt8], BlobStore.WindowVerification
    ) {
        var out: [UInt8] = []
        let how = try store.read(digest, range: range) { (piece) throws(CasketError) in out += piece }
        return (out, how)
    }

    static func flip(_ path: String, at offset: UInt64) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let byte = try #require(try handle.read(upToCount: 1)).first! ^ 0x40
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [byte])
    }

    @Test("the conformance sidecars: the digester in uneven pieces and every put path write those bytes")
    func conformance() throws {
        try withTemporaryDirectory { dir in
            let store = try Self.store(dir, "s", minimum: 1)
            for vector in try Self.vectors() {
                let size = try #require(vector["size"] as? Int)
                let bytes = Self.payload(size)
                let digester = ChunkDigester()
                var at = 0
                while at < size {
                    let end = min(at + 100_003, size)
                    bytes[at..<end].withUnsafeBytes { digester.update($0) }
                    at = end
                }
                let digest = Digest(hashing: bytes)
                #expect(digest.hex == vector["hash"] as? String)
                let encoded = ChunkDigests(digest: digest, size: Int64(size), digests: digester.finish()).encoded()
                #expect(Self.hex(encoded) == vector["sidecar"] as? String, "size \(size)")
                _ = try store.put(bytes)
                #expect(Self.hex(try TestFiles.read(store.sidecarPath(digest))) == vector["sidecar"] as? String)
            }
        }
    }

    @Test("file, range (migration) and stream puts and LZ4 blobs all get the sidecar; small ones none")
    func everyPutPath() throws {
        try withTemporaryDirectory { dir in
            let bytes = TestBytes.random(3 << 20, seed: 5)
            let digest = Digest(hashing: bytes)
            let file = dir + "/input"
            try TestFiles.write(file, [1, 2, 3] + bytes)
            let reference = try Self.store(dir, "ref")
            let expected = try TestFiles.read(reference.sidecarPath(try reference.put(bytes).digest))
            for (name, put) in [
                ("range-hash-first", { (s: BlobStore) throws in try s.put(fileAt: file, offset: 3, length: 3 << 20) }),
                (
                    "range-copy",
                    { (s: BlobStore) throws in try s.put(fileAt: file, offset: 3, length: 3 << 20, hashFirst: false) }
                ),
                ("bytes-lz4", { (s: BlobStore) throws in try s.put(bytes) }),
            ] as [(String, (BlobStore) throws -> PutResult)] {
                let store = try Self.store(dir, name, compression: name.hasSuffix("lz4") ? .lz4 : .none)
                #expect(try put(store).digest == digest)
                #expect(try TestFiles.read(store.sidecarPath(digest)) == expected, "\(name)")
            }
            var offset = 0
            let stream = try Self.store(dir, "stream")
            _ = try stream.put(streaming: { (buffer) throws(CasketError) -> Int in
                let n = min(bytes.count - offset, buffer.count, 77_777)
                bytes[offset..<offset + n].withUnsafeBytes { buffer.copyMemory(from: $0) }
                offset += n
                return n
            })
            #expect(try TestFiles.read(stream.sidecarPath(digest)) == expected)
            let small = try stream.put(Array(bytes[..<1000]))
            #expect(!FileManager.default.fileExists(atPath: stream.sidecarPath(small.digest)))
            // A dedup hit gives a blob stored without one its sidecar.
            try FileManager.default.removeItem(atPath: stream.sidecarPath(digest))
            #expect(try stream.put(bytes).deduplicated)
            #expect(try TestFiles.read(stream.sidecarPath(digest)) == expected)
            try FileManager.default.removeItem(atPath: stream.sidecarPath(digest))
            #expect(try stream.put(fileAt: file, offset: 3, length: 3 << 20).deduplicated)
            #expect(try TestFiles.read(stream.sidecarPath(digest)) == expected)
        }
    }

    @Test("a window reads and verifies only its chunks; a flipped byte inside it is an error naming the chunk")
    func windows() throws {
        try withTemporaryDirectory { dir in
            let store = try Self.store(dir, "s")
            let bytes = TestBytes.random(3 << 20, seed: 6)
            let digest = try store.put(bytes).digest
            let c = Int64(Self.chunk)
            for range in [0..<1, c - 3..<c + 5, 3 * c..<5 * c, Int64(bytes.count) - 9..<Int64(bytes.count), 7..<7] {
                let (got, how) = try Self.window(store, digest, range)
                #expect(got == Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)]))
                #expect(how == .chunks(range.isEmpty ? 0 : Int((range.upperBound - 1) / c - range.lowerBound / c) + 1))
            }
            try Self.flip(store.path(of: digest, compressed: false), at: UInt64(9 * c + 100))
            #expect(try Self.window(store, digest, 0..<c).0 == Array(bytes[..<Self.chunk]))
            let error = #expect(throws: CasketError.self) { try Self.window(store, digest, 9 * c..<9 * c + 1) }
            #expect(error?.code == .corrupt)
            #expect(error?.message.contains("chunk 9 ") == true)
            #expect(error?.message.contains(digest.hex) == true)
            #expect(error?.message.contains("its digest in") == true)
            #expect(throws: CasketError.self) { try store.verify(digest) }
            let beyond = #expect(throws: CasketError.self) {
                try Self.window(store, digest, 0..<Int64(bytes.count) + 1)
            }
            #expect(beyond?.code == .invalidArgument)
        }
    }

    @Test("no sidecar, a truncated one, another blob's, a wrong one: the blob is verified whole and served")
    func fallbacks() throws {
        try withTemporaryDirectory { dir in
            let store = try Self.store(dir, "s")
            let bytes = TestBytes.random(2 << 20, seed: 7)
            let other = TestBytes.random(2 << 20, seed: 8)
            let digest = try store.put(bytes).digest
            let otherDigest = try store.put(other).digest
            let side = store.sidecarPath(digest)
            let good = try TestFiles.read(side)
            let range: Range<Int64> = 1000..<400_000
            let want = Array(bytes[1000..<400_000])
            var digests = try ChunkDigests.parse(good, digest: digest, size: 2 << 20).get().digests
            digests[0] ^= 1
            let wrong = ChunkDigests(digest: digest, size: 2 << 20, digests: digests).encoded()
            let otherSidecar = try TestFiles.read(store.sidecarPath(otherDigest))
            for content in [nil, Array(good[..<60]), otherSidecar, wrong] {
                try? FileManager.default.removeItem(atPath: side)
                if let content { try TestFiles.write(side, content) }
                let usable = store.sidecar(digest, size: 2 << 20).digests != nil
                #expect(usable == (content == wrong))
                let (got, how) = try Self.window(store, digest, range)
                #expect(got == want)
                #expect(how == .whole)
            }
            try FileManager.default.removeItem(atPath: side)
            try FileManager.default.createSymbolicLink(
                atPath: side, withDestinationPath: store.sidecarPath(otherDigest))
            guard case .unusable(_, let reason) = store.sidecar(digest, size: 2 << 20) else {
                Issue.record("a symlink sidecar was used")
                return
            }
            #expect(reason.contains("symbolic link"))
            _ = try store.put(bytes)  // the put replaces the link itself
            #expect(try TestFiles.read(side) == good)
            #expect(try TestFiles.read(store.sidecarPath(otherDigest)) == otherSidecar)
        }
    }

    @Test("an LZ4 blob is decoded whole for a window, and verified")
    func compressedWindow() throws {
        try withTemporaryDirectory { dir in
            let store = try Self.store(dir, "z", compression: .lz4)
            let bytes = TestBytes.compressible(3 << 20)
            let result = try store.put(bytes)
            #expect(result.compressed)
            let (got, how) = try Self.window(store, result.digest, 5..<300_000)
            #expect(got == Array(bytes[5..<300_000]))
            #expect(how == .whole)
        }
    }

    @Test("a raw blob corrupt under a window gives way to its sound LZ4 twin")
    func twinFallback() throws {
        try withTemporaryDirectory { dir in
            let store = try Self.store(dir, "raw")
            let bytes = TestBytes.compressible(2 << 20)
            let digest = try store.put(bytes).digest
            let framed = try Self.store(dir, "lz4", compression: .lz4)
            #expect(try framed.put(bytes).compressed)
            try FileManager.default.copyItem(
                atPath: framed.path(of: digest, compressed: true), toPath: store.path(of: digest, compressed: true))
            try Self.flip(store.path(of: digest, compressed: false), at: 70_000)
            let (got, how) = try Self.window(store, digest, 65_536..<131_072)
            #expect(got == Array(bytes[65_536..<131_072]))
            #expect(how == .whole)
        }
    }

    @Test("PayloadRange parses A:B, A: and :B and refuses the rest")
    func ranges() throws {
        #expect(PayloadRange(parsing: "3:9") == PayloadRange(start: 3, end: 9))
        #expect(PayloadRange(parsing: "3:") == PayloadRange(start: 3, end: nil))
        #expect(PayloadRange(parsing: ":9") == PayloadRange(start: 0, end: 9))
        for bad in ["9:3", "3", "a:b", "-1:4", "+1:4", "1:2:3", "", "99999999999999999999:"] {
            #expect(PayloadRange(parsing: bad) == nil, "\(bad)")
        }
        #expect(try PayloadRange(start: 2).resolved(size: 10, of: "x") == 2..<10)
        let error = #expect(throws: CasketError.self) {
            try PayloadRange(start: 2, end: 11).resolved(size: 10, of: "x")
        }
        #expect(error?.code == .invalidArgument)
    }
}
