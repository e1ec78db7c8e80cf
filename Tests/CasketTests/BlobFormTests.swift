import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Blob forms are judged by soundness (docs/FORMAT.md 3.4): the dedup check, readers, `blob has` and GC
/// never trust a raw file of the wrong size, a symlink, or an LZ4 file that is not one complete frame.
@Suite("Blob forms judged by soundness")
struct BlobFormTests {
    /// An LZ4 store made by `casket init` with one key whose compressible payload is kept as a frame.
    struct Fixture {
        let dir: TemporaryDirectory
        let bytes: [UInt8]
        let digest: Digest
        var store: String { dir.child("store") }
        var input: String { dir.child("input") }
        var raw: String { TestStore.rawPath(store, digest) }
        var frame: String { TestStore.compressedPath(store, digest) }

        init(size: Int = 3 << 20) throws {
            dir = try TemporaryDirectory()
            bytes = TestBytes.compressible(size)
            digest = Digest(hashing: bytes)
            #expect(
                try CLI.run(["init", "--compression", "lz4", "--durability", "none", dir.child("store")]).status == 0)
            try TestFiles.write(dir.child("input"), bytes)
            let set = try CLI.run(["set", "--store", dir.child("store"), "k", dir.child("input")])
            #expect(set.status == 0, "\(set)")
            #expect(TestFiles.info(TestStore.compressedPath(dir.child("store"), digest)) != nil, "stored as a frame")
        }

        func run(_ arguments: [String], stdinFile: String? = nil, stdoutFile: String? = nil) throws -> ProcessOutput {
            try CLI.run(arguments + ["--store", store], stdinFile: stdinFile, stdoutFile: stdoutFile)
        }

        /// `casket get KEY` into a file; the bytes or nil, and the output.
        func get(_ key: String) throws -> (bytes: [UInt8]?, output: ProcessOutput) {
            let out = dir.child("out-\(key)")
            let output = try run(["get", key], stdoutFile: out)
            return (output.status == 0 ? try TestFiles.read(out) : nil, output)
        }
    }

    @Test("a raw file of the wrong size beside a sound frame: reads, has and GC take the frame, GC removes the raw")
    func wrongSizeRawBesideFrame() throws {
        let f = try Fixture()
        // A newer raw file, one byte short: today's GC would remove the sound frame as the "older twin".
        try TestFiles.write(f.raw, Array(f.bytes.dropLast()))
        let now = Int(Date().timeIntervalSince1970)
        TestFiles.setMtime(f.frame, secondsSinceEpoch: now - 3 * 3600)
        TestFiles.setMtime(f.raw, secondsSinceEpoch: now - 2 * 3600)

        let got = try f.get("k")
        #expect(got.bytes == f.bytes, "the reader falls back to the sound frame: \(got.output)")
        let has = try f.run(["blob", "has", "--json", f.digest.hex])
        #expect(has.status == 0 && has.stdout.contains("\"compressed\":true"), "\(has)")
        let exported = f.dir.child("exported")
        let blobGet = try f.run(["blob", "get", f.digest.hex, "-o", exported])
        #expect(blobGet.status == 0, "\(blobGet)")
        #expect(try TestFiles.read(exported) == f.bytes)

        let gc = try f.run(["gc", "--grace", "1h", "--json"])
        #expect(gc.status == 0, "\(gc)")
        #expect(gc.stdout.contains("\"unsound_forms_removed\":1"), "\(gc)")
        #expect(gc.stdout.contains("\"twins_removed\":0"), "\(gc)")
        #expect(TestFiles.info(f.frame) != nil, "the only sound form is kept")
        #expect(TestFiles.info(f.raw) == nil, "the unsound raw file is removed")
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("a newer truncated frame beside an older sound raw file: GC removes the frame, never the raw file")
    func truncatedFrameBesideOlderRaw() throws {
        let f = try Fixture()
        try TestFiles.write(f.raw, f.bytes)
        let size = Int(try #require(TestFiles.info(f.frame)).size)
        TestFiles.truncate(f.frame, to: size / 2)
        let now = Int(Date().timeIntervalSince1970)
        TestFiles.setMtime(f.raw, secondsSinceEpoch: now - 3 * 3600)
        TestFiles.setMtime(f.frame, secondsSinceEpoch: now - 2 * 3600)
        let gc = try f.run(["gc", "--grace", "1h", "--json"])
        #expect(gc.status == 0 && gc.stdout.contains("\"unsound_forms_removed\":1"), "\(gc)")
        #expect(TestFiles.info(f.raw) != nil, "the only sound form is kept")
        #expect(TestFiles.info(f.frame) == nil, "the unsound frame is removed")
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("a stream's frame has no content size: a wrong-size raw beside it is still unsound, and GC keeps the frame")
    func wrongSizeRawBesideFrameWithoutSize() throws {
        let f = try Fixture()
        _ = unlink(f.frame)
        let stdin = try f.run(["blob", "put", "--json", "-"], stdinFile: f.input)
        #expect(stdin.status == 0 && stdin.stdout.contains("\"compressed\":true"), "\(stdin)")
        #expect(try TestFiles.read(f.frame)[4] & 0x08 == 0, "the frame carries no content size")
        try TestFiles.write(f.raw, Array(f.bytes.prefix(1000)))
        let now = Int(Date().timeIntervalSince1970)
        TestFiles.setMtime(f.frame, secondsSinceEpoch: now - 3 * 3600)
        TestFiles.setMtime(f.raw, secondsSinceEpoch: now - 2 * 3600)
        let has = try f.run(["blob", "has", "--json", f.digest.hex])
        #expect(has.stdout.contains("\"compressed\":true"), "\(has)")
        let gc = try f.run(["gc", "--grace", "1h", "--json"])
        #expect(gc.status == 0 && gc.stdout.contains("\"unsound_forms_removed\":1"), "\(gc)")
        #expect(TestFiles.info(f.frame) != nil && TestFiles.info(f.raw) == nil)
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("a raw file of the right size but wrong bytes beside a sound frame: get -o falls back, never wrong data")
    func corruptRawBesideFrame() throws {
        let f = try Fixture()
        var damaged = f.bytes
        damaged[damaged.count / 2] ^= 0xFF
        try TestFiles.write(f.raw, damaged)
        let out = f.dir.child("out")
        let get = try f.run(["get", "k", "-o", out])
        #expect(get.status == 0, "\(get)")
        #expect(try TestFiles.read(out) == f.bytes)
        // On standard output the bytes are gone when the hash fails: exit 1, naming the sound twin.
        let stdout = try f.run(["get", "k"], stdoutFile: f.dir.child("stdout"))
        #expect(stdout.status == 1, "\(stdout)")
        #expect(stdout.stderr.contains(f.raw) && stdout.stderr.contains("its other form '\(f.frame)' is sound"))
    }

    @Test(
        "a truncated frame with an intact header is not deduplicated against: set replaces it", arguments: [4, 100, 0])
    func truncatedFrameIsReplaced(cut: Int) throws {
        let f = try Fixture()
        let size = Int(try #require(TestFiles.info(f.frame)).size)
        // Cut the content checksum (4), a block's tail (100), or all but the header (size - 7 - 8).
        TestFiles.truncate(f.frame, to: cut == 0 ? 15 : size - cut)
        #expect(try f.get("k").bytes == nil, "the damage is seen")
        let has = try f.run(["blob", "has", f.digest.hex])
        #expect(has.status == 1, "an unsound frame is not a stored blob: \(has)")

        let set = try f.run(["set", "k2", f.input])
        #expect(set.status == 0, "\(set)")
        #expect(TestFiles.info(f.frame)?.size == Int64(size), "the writer replaced the frame")
        let got = try f.get("k2")
        #expect(got.bytes == f.bytes, "\(got.output)")
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("a frame followed by trailing bytes is unsound: put writes the blob again")
    func trailingBytesAfterFrame() throws {
        let f = try Fixture()
        let size = try #require(TestFiles.info(f.frame)).size
        try TestFiles.append(f.frame, [0x04, 0x22, 0x4D, 0x18, 0, 0, 0, 0])
        let has = try f.run(["blob", "has", f.digest.hex])
        #expect(has.status == 1, "\(has)")
        let put = try f.run(["blob", "put", "--json", f.input])
        #expect(put.status == 0 && put.stdout.contains("\"deduplicated\":false"), "\(put)")
        #expect(TestFiles.info(f.frame)?.size == size)
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("a block that declares more than the frame's block size is unsound")
    func oversizedBlock() throws {
        let f = try Fixture()
        var frame = try TestFiles.read(f.frame)
        let first = 4 + 1 + 1 + 8 + 1  // magic, FLG, BD, content size, header checksum
        frame[first + 3] = 0x7F  // the first block now declares about 2 GiB
        try TestFiles.write(f.frame, frame)
        let has = try f.run(["blob", "has", f.digest.hex])
        #expect(has.status == 1, "\(has)")
        let get = try f.run(["blob", "get", f.digest.hex], stdoutFile: f.dir.child("o"))
        #expect(get.status == 1 && get.stderr.contains("declares") && get.stderr.contains(f.frame), "\(get)")
        #expect(try f.run(["blob", "put", f.input]).status == 0)
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("a raw symlink, even to the payload's exact bytes, is not a sound form; set replaces it with a file")
    func rawSymlinkIsNotAForm() throws {
        let dir = try TemporaryDirectory()
        let store = dir.child("store")
        #expect(try CLI.run(["init", "--durability", "none", store]).status == 0)
        let bytes = TestBytes.random(100_000, seed: 3)
        let digest = Digest(hashing: bytes)
        let foreign = dir.child("foreign")
        try TestFiles.write(foreign, bytes)
        let raw = TestStore.rawPath(store, digest)
        #expect(symlink(foreign, raw) == 0)
        let has = try CLI.run(["blob", "has", "--store", store, digest.hex])
        #expect(has.status == 1 && has.stdout.contains("absent"), "\(has)")
        let get = try CLI.run(["blob", "get", "--store", store, digest.hex], stdoutFile: dir.child("o"))
        #expect(get.status == 1 && get.stderr.contains("symbolic link") && get.stderr.contains(raw), "\(get)")
        try TestFiles.write(dir.child("input"), bytes)
        let put = try CLI.run(["blob", "put", "--json", "--store", store, dir.child("input")])
        #expect(put.status == 0 && put.stdout.contains("\"deduplicated\":false"), "\(put)")
        var st = stat()
        #expect(lstat(raw, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG, "the symlink was replaced by a file")
        #expect(try TestFiles.read(foreign) == bytes, "the foreign file is untouched")
    }

    @Test("a FIFO under a blob's raw name is not a form and never blocks a reader or a writer")
    func rawFIFOIsNotAForm() throws {
        let f = try Fixture()
        #expect(mkfifo(f.raw, 0o644) == 0)
        let got = try f.get("k")
        #expect(got.bytes == f.bytes, "\(got.output)")
        let has = try f.run(["blob", "has", "--json", f.digest.hex])
        #expect(has.stdout.contains("\"compressed\":true"), "\(has)")
        #expect(try f.run(["blob", "put", f.input]).status == 0)
        var st = stat()
        #expect(lstat(f.raw, &st) != 0, "the dedup hit on the frame removed the FIFO")
        _ = unlink(f.frame)
        #expect(mkfifo(f.raw, 0o644) == 0)
        let alone = try f.run(["blob", "get", f.digest.hex], stdoutFile: f.dir.child("o"))
        #expect(alone.status == 1 && alone.stderr.contains("is a FIFO, not a regular file"), "\(alone)")
        let replaced = try f.run(["blob", "put", "--json", f.input])
        #expect(replaced.status == 0 && replaced.stdout.contains("\"deduplicated\":false"), "\(replaced)")
        #expect(try f.get("k").bytes == f.bytes)
    }

    @Test("the form depends on the payload only: a file and the same bytes on stdin pick the same form")
    func formRuleIsStreamIndependent() throws {
        let dir = try TemporaryDirectory()
        let store = dir.child("store")
        #expect(try CLI.run(["init", "--compression", "lz4", "--durability", "none", store]).status == 0)
        let cases: [(String, [UInt8], Bool)] = [
            (
                "compressible only after 1 MiB", TestBytes.random(1 << 20, seed: 5) + TestBytes.compressible(3 << 20),
                false
            ),
            (
                "compressible after 256 KiB", TestBytes.random(256 << 10, seed: 4) + TestBytes.compressible(3 << 20),
                true
            ),
            ("compressible first MiB only", TestBytes.compressible(1 << 20) + TestBytes.random(3 << 20, seed: 6), true),
            ("incompressible", TestBytes.random(2 << 20, seed: 7), false),
            ("tiny", Array("casket casket casket".utf8), false),
        ]
        for (name, bytes, compressed) in cases {
            let input = dir.child(name.replacingOccurrences(of: " ", with: "-"))
            try TestFiles.write(input, bytes)
            let file = try CLI.run(["blob", "put", "--json", "--store", store, input])
            #expect(file.stdout.contains("\"compressed\":\(compressed)"), "\(name), file: \(file)")
            let digest = Digest(hashing: bytes)
            _ = unlink(TestStore.rawPath(store, digest))
            _ = unlink(TestStore.compressedPath(store, digest))
            let stdin = try CLI.run(["blob", "put", "--json", "--store", store, "-"], stdinFile: input)
            #expect(stdin.stdout.contains("\"compressed\":\(compressed)"), "\(name), stdin: \(stdin)")
        }
    }
}
