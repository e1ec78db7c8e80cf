import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `casket` command as a real subprocess: corruption and bad input (invariants I1, I6).
@Suite("casket CLI: corruption and bad input")
struct CLITests {
    /// A store made by `casket init`, holding one stored file.
    struct Fixture {
        let dir: TemporaryDirectory
        var store: String { dir.child("store") }
        var input: String { dir.child("input") }
        let bytes: [UInt8]
        let digest: Digest

        init(size: Int = 300_000, durability: String = "none") throws {
            dir = try TemporaryDirectory()
            bytes = TestBytes.random(size, seed: 7)
            digest = Digest(hashing: bytes)
            // Loose blobs: these tests look at blob files (pack records: PackedStoreTests).
            let created = try CLI.run(["init", "--durability", durability, "--pack-max", "0", dir.child("store")])
            #expect(created.status == 0, "\(created)")
            try TestFiles.write(dir.child("input"), bytes)
            let put = try CLI.run(["blob", "put", "--store", dir.child("store"), dir.child("input")])
            #expect(put.status == 0, "\(put)")
            #expect(put.stdout == "\(digest.hex)  \(dir.child("input"))\n")
        }

        var blobPath: String { TestStore.rawPath(store, digest) }
    }

    @Test("put, has, get, verify and stat agree on a healthy store")
    func healthyRoundTrip() throws {
        let f = try Fixture()
        #expect(try CLI.run(["blob", "has", "--store", f.store, f.digest.hex]).status == 0)
        let out = f.dir.child("out")
        let get = try CLI.run(["blob", "get", "--store", f.store, f.digest.hex], stdoutFile: out)
        #expect(get.status == 0, "\(get)")
        #expect(try TestFiles.read(out) == f.bytes)
        let getO = try CLI.run(["blob", "get", "--store", f.store, f.digest.hex, "-o", f.dir.child("out2")])
        #expect(getO.status == 0, "\(getO)")
        #expect(try TestFiles.read(f.dir.child("out2")) == f.bytes)
        let stdinPut = try CLI.run(["blob", "put", "--store", f.store, "--json", "-"], stdinFile: f.input)
        #expect(stdinPut.status == 0 && stdinPut.stdout.contains("\"deduplicated\":true"), "\(stdinPut)")
        let verify = try CLI.run(["blob", "verify", "--store", f.store])
        #expect(verify.status == 0 && verify.stdout.contains("verified 1 blobs"), "\(verify)")
        let stat = try CLI.run(["stat", "--json", "--store", f.store])
        #expect(stat.status == 0 && stat.stdout.contains("\"blobs\":1"), "\(stat)")
        let absent = try CLI.run(["blob", "has", "--store", f.store, Digest(hashing: [1, 2, 3]).hex])
        #expect(absent.status == 1)
    }

    @Test(
        "a flipped byte: get and verify exit 1 naming the blob file, the expected and the actual hash",
        arguments: [0, 150_000, 299_999])
    func flippedByte(offset: Int) throws {
        let f = try Fixture()
        try TestFiles.flipByte(f.blobPath, at: offset)
        let actual = Digest(hashing: try TestFiles.read(f.blobPath))
        #expect(actual != f.digest)

        func expectCorruptReport(_ output: ProcessOutput, _ what: String) {
            #expect(output.status == 1, "\(what): \(output)")
            #expect(output.stderr.contains(f.blobPath), "\(what) names the blob file: \(output)")
            #expect(output.stderr.contains("expected hash \(f.digest.hex)"), "\(what): \(output)")
            #expect(output.stderr.contains("actual \(actual.hex)"), "\(what): \(output)")
        }
        expectCorruptReport(
            try CLI.run(["blob", "get", "--store", f.store, f.digest.hex], stdoutFile: f.dir.child("stdout")), "get")
        let destination = f.dir.child("exported")
        expectCorruptReport(
            try CLI.run(["blob", "get", "--store", f.store, f.digest.hex, "-o", destination]), "get -o")
        #expect(TestFiles.info(destination) == nil, "-o FILE is not left behind")
        #expect(!TestFiles.names(in: f.dir.path).contains { $0.hasPrefix(".casket-") }, "no export temp file left")
        // An existing destination is not clobbered by unverified bytes either.
        try TestFiles.write(destination, [42])
        expectCorruptReport(
            try CLI.run(["blob", "get", "--store", f.store, f.digest.hex, "-o", destination]), "get -o")
        #expect(try TestFiles.read(destination) == [42])
        expectCorruptReport(try CLI.run(["blob", "verify", "--store", f.store]), "verify (all)")
        expectCorruptReport(try CLI.run(["blob", "verify", "--store", f.store, f.digest.hex]), "verify HASH")
        let json = try CLI.run(["blob", "verify", "--json", "--store", f.store])
        #expect(
            json.status == 1 && json.stdout.contains("\"code\":\"corrupt\"") && json.stdout.contains("\"ok\":false"))
    }

    @Test("a corrupt LZ4 blob is reported, never returned as data")
    func corruptFrame() throws {
        let dir = try TemporaryDirectory()
        let store = dir.child("store")
        #expect(try CLI.run(["init", "--compression", "lz4", "--durability", "none", store]).status == 0)
        let bytes = TestBytes.compressible(1 << 20)
        try TestFiles.write(dir.child("input"), bytes)
        let put = try CLI.run(["blob", "put", "--json", "--store", store, dir.child("input")])
        #expect(put.stdout.contains("\"compressed\":true"), "\(put)")
        let digest = Digest(hashing: bytes)
        let frame = TestStore.compressedPath(store, digest)
        let size = Int(try #require(TestFiles.info(frame)).size)
        try TestFiles.flipByte(frame, at: size / 2)
        for args in [
            ["blob", "get", "--store", store, digest.hex, "-o", dir.child("out")],
            ["blob", "verify", "--store", store],
        ] {
            let output = try CLI.run(args)
            #expect(output.status == 1, "\(output)")
            #expect(output.stderr.contains(frame), "names the frame file: \(output)")
        }
        #expect(TestFiles.info(dir.child("out")) == nil)
    }

    /// One bad invocation and what it must produce.
    struct BadInput: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: @Sendable (Fixture) -> [String]
        var status: Int32
        var messages: @Sendable (Fixture) -> [String]
        var testDescription: String { name }
    }

    static let badInputs: [BadInput] = [
        BadInput(
            name: "put of a missing file", arguments: { ["blob", "put", "--store", $0.store, $0.dir.child("nope")] },
            status: 1, messages: { [$0.dir.child("nope"), "No such file"] }),
        BadInput(
            name: "put of a directory", arguments: { ["blob", "put", "--store", $0.store, $0.dir.path] },
            status: 1, messages: { [$0.dir.path, "directory"] }),
        BadInput(
            name: "get of a too-short hash", arguments: { ["blob", "get", "--store", $0.store, "99aa06d3"] },
            status: 1, messages: { _ in ["'99aa06d3' is not a hash", "32 lowercase hexadecimal digits"] }),
        BadInput(
            name: "get of a non-hex hash",
            arguments: { ["blob", "get", "--store", $0.store, "zzaa06d3014798d86001c324468d497f"] },
            status: 1, messages: { _ in ["'zzaa06d3014798d86001c324468d497f' is not a hash"] }),
        BadInput(
            name: "get of an upper-case hash",
            arguments: { ["blob", "get", "--store", $0.store, $0.digest.hex.uppercased()] },
            status: 1, messages: { ["'\($0.digest.hex.uppercased())' is not a hash"] }),
        BadInput(
            name: "get of ../../etc/passwd", arguments: { ["blob", "get", "--store", $0.store, "../../etc/passwd"] },
            status: 1, messages: { _ in ["'../../etc/passwd' is not a hash"] }),
        BadInput(
            name: "verify of ../../etc/passwd",
            arguments: { ["blob", "verify", "--store", $0.store, "../../etc/passwd"] },
            status: 1, messages: { _ in ["'../../etc/passwd' is not a hash"] }),
        BadInput(
            name: "has of ../../etc/passwd", arguments: { ["blob", "has", "--store", $0.store, "../../etc/passwd"] },
            status: 1, messages: { _ in ["'../../etc/passwd' is not a hash"] }),
        BadInput(
            name: "get of a blob that is not stored",
            arguments: { ["blob", "get", "--store", $0.store, Digest.empty.hex] },
            status: 1, messages: { _ in [Digest.empty.hex, "is not in the store"] }),
        BadInput(
            name: "a folder that is not a store",
            arguments: { ["blob", "put", "--store", $0.dir.path, $0.input] },
            status: 1, messages: { ["'\($0.dir.path)' is not a Casket store", "casket init"] }),
        BadInput(
            name: "a store folder that does not exist",
            arguments: { ["stat", "--store", $0.dir.child("missing")] },
            status: 1, messages: { ["'\($0.dir.child("missing"))' does not exist"] }),
        BadInput(
            name: "usage: put without a file", arguments: { ["blob", "put", "--store", $0.store] },
            status: 2, messages: { _ in ["Missing expected argument", "<files>"] }),
        BadInput(
            name: "usage: get without a hash", arguments: { ["blob", "get", "--store", $0.store] },
            status: 2, messages: { _ in ["Missing expected argument"] }),
        BadInput(
            name: "usage: unknown subcommand", arguments: { (_: Fixture) in ["blob", "frobnicate"] },
            status: 2, messages: { _ in ["frobnicate"] }),
        BadInput(
            name: "usage: unknown option", arguments: { ["stat", "--store", $0.store, "--no-such-option"] },
            status: 2, messages: { _ in ["--no-such-option"] }),
        BadInput(
            name: "usage: init without a folder", arguments: { (_: Fixture) in ["init"] },
            status: 2, messages: { _ in ["Missing expected argument"] }),
        BadInput(
            name: "usage: bad --compression", arguments: { ["init", "--compression", "zstd", $0.dir.child("s2")] },
            status: 2, messages: { _ in ["zstd"] }),
    ]

    @Test("bad input gets a non-zero exit and a clear message", arguments: badInputs)
    func badInput(_ bad: BadInput) throws {
        let f = try Fixture(size: 1000)
        let output = try CLI.run(bad.arguments(f))
        #expect(output.status == bad.status, "\(output)")
        for message in bad.messages(f) {
            #expect(output.stderr.contains(message), "stderr should contain \"\(message)\": \(output)")
        }
        #expect(!output.stderr.contains("Fatal error"), "no crash: \(output)")
        // Nothing was lost or added.
        #expect(TestStore.blobFiles(f.store) == [String(f.digest.hex.prefix(2)) + "/" + f.digest.hex])
        #expect(TestStore.tempFiles(f.store).isEmpty)
    }

    @Test("a store of a newer format version is refused, also with --json")
    func newerVersion() throws {
        let f = try Fixture(size: 1000)
        let config = f.store + "/casket.json"
        try TestFiles.write(
            config,
            Array(
                #"{"format":"casket","version":3,"hash":"xxh3-128","compression":"none","durability":"none","inline_max":0}"#
                    .utf8))
        for args in [
            ["blob", "get", "--store", f.store, f.digest.hex], ["blob", "put", "--store", f.store, f.input],
            ["stat", "--store", f.store],
        ] {
            let output = try CLI.run(args)
            #expect(output.status == 1, "\(output)")
            #expect(output.stderr.contains("format version 3") && output.stderr.contains("upgrade casket"), "\(output)")
            #expect(output.stdout.isEmpty, "no payload bytes written: \(output)")
        }
        let json = try CLI.run(["stat", "--json", "--store", f.store])
        #expect(json.status == 1 && json.stdout.contains("\"code\":\"unsupported_version\""), "\(json)")
        // Not a store at all: a casket.json of another program.
        try TestFiles.write(config, Array(#"{"format":"other","version":1}"#.utf8))
        let other = try CLI.run(["stat", "--store", f.store])
        #expect(other.status == 1 && other.stderr.contains("is not a Casket store"), "\(other)")
        try TestFiles.write(config, Array("not json".utf8))
        let garbage = try CLI.run(["stat", "--store", f.store])
        #expect(garbage.status == 1 && garbage.stderr.contains(config), "\(garbage)")
    }

    /// `setpriv`, to run a command as an unprivileged user when the tests run as root.
    static let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(
        "put of an unreadable file (chmod 000) fails naming the file",
        .enabled(if: !TestFiles.isRoot || setpriv != nil, "root reads any file and setpriv is missing"))
    func unreadableFile() throws {
        let f = try Fixture(size: 1000)
        let secret = f.dir.child("secret")
        try TestFiles.write(secret, TestBytes.random(5000, seed: 99))
        chmod(secret, 0o000)
        var output: ProcessOutput
        if TestFiles.isRoot, let setpriv = Self.setpriv {
            // Root ignores permission bits, so run casket as nobody (65534) on a store nobody may write.
            for path in [f.dir.path, f.store] + ["blobs", "tmp", "index"].map({ f.store + "/" + $0 }) {
                chmod(path, 0o777)
            }
            output = try runProgram(
                setpriv,
                [
                    "--reuid=65534", "--regid=65534", "--clear-groups", try CLI.executable(), "blob", "put", "--store",
                    f.store, secret,
                ])
        } else {
            output = try CLI.run(["blob", "put", "--store", f.store, secret])
        }
        #expect(output.status == 1, "\(output)")
        #expect(output.stderr.contains(secret) && output.stderr.contains("Permission denied"), "\(output)")
        #expect(TestStore.blobFiles(f.store).count == 1)
        #expect(TestStore.tempFiles(f.store).isEmpty)
    }

    @Test(
        "a file size limit hit during a put (RLIMIT_FSIZE, EFBIG): clear error, no partial blob, tmp/ empty",
        arguments: ["none", "fsync"])
    func fileSizeLimit(durability: String) throws {
        let f = try Fixture(size: 1000, durability: durability)
        let big = f.dir.child("big")
        try TestBytes.writeLargeFile(big, size: 8 << 20, seed: 8)
        // ulimit -f counts 512-byte blocks in dash: 2048 blocks = 1 MiB. SIGXFSZ ignored so write returns EFBIG.
        let output = try runProgram(
            "/bin/sh",
            [
                "-c", "trap '' XFSZ; ulimit -f 2048; exec \"$@\"", "sh", try CLI.executable(), "blob", "put", "--store",
                f.store, big,
            ])
        #expect(output.status == 1, "\(output)")
        #expect(output.stderr.contains("File too large"), "\(output)")
        #expect(output.stderr.contains(f.store + "/tmp/"), "names the file that could not be written: \(output)")
        #expect(output.stderr.contains(big), "names the file being stored: \(output)")
        #expect(TestStore.blobFiles(f.store).count == 1, "no partial blob")
        #expect(TestStore.tempFiles(f.store).isEmpty, "the temp file was removed")
        #expect(TestStore.problems(try BlobStore.open(at: f.store)).isEmpty)
    }

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as in the development container).
    static let canMountTmpfs: Bool = {
        guard TestFiles.isRoot, let dir = try? TemporaryDirectory(prefix: "casket-mount-probe") else { return false }
        guard mount("tmpfs", dir.path, "tmpfs", 0, "size=1m") == 0 else { return false }
        umount(dir.path)
        return true
    }()

    @Test(
        "a disk that fills during a put (8 MiB tmpfs, ENOSPC): clear error, no partial blob, tmp/ empty",
        .enabled(if: canMountTmpfs, "mounting a tmpfs needs root with CAP_SYS_ADMIN"),
        arguments: ["none", "fsync"])
    func fullDisk(durability: String) throws {
        let dir = try TemporaryDirectory()
        let mountPoint = dir.child("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try #require(mount("tmpfs", mountPoint, "tmpfs", 0, "size=8m") == 0)
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        let store = mountPoint + "/store"
        #expect(try CLI.run(["init", "--durability", durability, store]).status == 0)
        let big = dir.child("big")
        try TestBytes.writeLargeFile(big, size: 16 << 20, seed: 16)
        let output = try CLI.run(["blob", "put", "--store", store, big])
        #expect(output.status == 1, "\(output)")
        #expect(output.stderr.contains("No space left on device"), "\(output)")
        #expect(output.stderr.contains(store + "/tmp/"), "\(output)")
        #expect(output.stderr.contains(big), "names the file being stored: \(output)")
        #expect(TestStore.blobFiles(store).isEmpty, "no partial blob")
        #expect(TestStore.tempFiles(store).isEmpty, "the temp file was removed")
        // The space came back: a smaller put now succeeds.
        let small = dir.child("small-input")
        try TestBytes.writeLargeFile(small, size: 4 << 20, seed: 4)
        let retry = try CLI.run(["blob", "put", "--store", store, small])
        #expect(retry.status == 0, "\(retry)")
        #expect(TestStore.problems(try BlobStore.open(at: store)).isEmpty)
    }
}
