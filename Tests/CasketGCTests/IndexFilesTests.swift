import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Which entries of `index/` are index files (FORMAT.md 5.1), through the real `casket` binary: debris
/// (a hidden name, a symlink, a folder, a FIFO) is reported, skipped, never read and never fatal.
@Suite("Index files: one rule, debris skipped", .serialized)
struct IndexFilesTests {
    /// A store made by `casket init` holding key `k`, whose blob is two hours old.
    struct Fixture {
        let dir: TemporaryDirectory
        var store: String { dir.child("store") }
        var index: String { dir.child("store/index") }
        let bytes = TestBytes.random(5000, seed: 77)

        init() throws {
            dir = try TemporaryDirectory()
            // A loose blob, aged below: what gc keeps or sweeps one by one.
            #expect(try CLI.run(["init", "--durability", "none", "--pack-max", "0", dir.child("store")]).status == 0)
            try TestFiles.write(dir.child("value"), bytes)
            let set = try CLI.run(["set", "--store", dir.child("store"), "k", dir.child("value")])
            #expect(set.status == 0, "\(set)")
            for file in TestStore.blobFiles(dir.child("store")) {
                TestFiles.setMtime(dir.child("store/blobs/") + file, secondsSinceEpoch: GCRun.now - 7200)
            }
        }

        /// Runs casket, killing it (and failing) if it has not finished within `seconds`: a FIFO must
        /// never block a command.
        func run(_ arguments: [String], stdoutFile: String? = nil, seconds: Double = 60) throws -> ProcessOutput {
            let child = try Child(executable: try CLI.executable(), arguments: arguments, stdoutFile: stdoutFile)
            let deadline = Date().addingTimeInterval(seconds)
            while child.isRunning && Date() < deadline { usleep(10_000) }
            let hung = child.isRunning
            if hung { child.signal(SIGKILL) }
            let out = child.wait()
            #expect(!hung, "casket \(arguments.joined(separator: " ")) hung: \(out)")
            return out
        }

        /// `casket get k` gives the value; gc (grace 1 h: the blob is older) sweeps nothing; fsck is clean;
        /// ls, stat and compact succeed. Every command that reads the index names `debris` in a warning.
        func expectDebrisSkipped(_ debris: String, kind: String) throws {
            let get = try run(["get", "--store", store, "k"], stdoutFile: dir.child("got"))
            #expect(try get.status == 0 && TestFiles.read(dir.child("got")) == bytes, "\(get)")
            #expect(get.stderr.contains("'\(index)/\(debris)' is \(kind): not an index file, skipped"), "\(get)")
            let ls = try run(["ls", "--store", store])
            #expect(ls.status == 0 && ls.stdout == "5000\tk\n", "\(ls)")
            let gc = try GCRun.json(["gc", "--store", store, "--grace", "1h"])
            #expect(gc.status == 0, "\(gc.output)")
            #expect(GCRun.int(gc.object, "swept") == 0 && GCRun.int(gc.object, "keys") == 1, "\(gc.output)")
            let reported = gc.object["index_debris"] as? [String] ?? []
            #expect(reported.contains { $0.contains("/index/\(debris)' is \(kind)") }, "\(gc.output)")
            #expect(gc.output.stderr.contains("'\(index)/\(debris)' is \(kind)"), "\(gc.output)")
            let fsck = try GCRun.json(["fsck", "--store", store])
            #expect(fsck.status == 0, "\(fsck.output)")
            let fsckDebris = fsck.object["index_debris"] as? [String] ?? []
            #expect(fsckDebris.contains { $0.contains("/index/\(debris)' is \(kind)") }, "\(fsck.output)")
            let stat = try run(["stat", "--store", store, "--json"])
            #expect(stat.status == 0, "\(stat)")
            let compact = try run(["compact", "--store", store, "--idle", "0"])
            #expect(compact.status == 0, "\(compact)")
            #expect(compact.stderr.contains("'\(index)/\(debris)' is \(kind)"), "\(compact)")
            let after = try run(["get", "--store", store, "k"], stdoutFile: dir.child("got2"))
            #expect(try after.status == 0 && TestFiles.read(dir.child("got2")) == bytes, "\(after)")
            #expect(
                FileManager.default.fileExists(atPath: TestStore.blobFiles(store).map { store + "/blobs/" + $0 }[0]))
        }
    }

    static func tombstone(_ key: String) -> [UInt8] {
        let future = Int64(Date().timeIntervalSince1970 * 1e9) + 1_000_000_000_000
        return Array("{\"key\":\"\(key)\",\"ts\":\(future),\"deleted\":true}\n".utf8)
    }

    @Test("a hidden index file holding a tombstone is not read: the key stays, gc keeps its blob")
    func hiddenFileWithTombstone() throws {
        let f = try Fixture()
        try TestFiles.write(f.index + "/.k-1-00000000.jsonl", Self.tombstone("k"))
        try f.expectDebrisSkipped(".k-1-00000000.jsonl", kind: "a hidden file (its name starts with '.')")
    }

    @Test("a dangling *.jsonl symlink: gc and fsck exit 0 and report it, never 'compaction running?'")
    func danglingSymlink() throws {
        let f = try Fixture()
        #expect(symlink(f.dir.child("nowhere/x.jsonl"), f.index + "/x.jsonl") == 0)
        try f.expectDebrisSkipped("x.jsonl", kind: "a symbolic link")
    }

    @Test("a symlink to a real index file outside the store is not followed")
    func symlinkToForeignIndexFile() throws {
        let f = try Fixture()
        try TestFiles.write(
            f.dir.child("foreign.jsonl"),
            Self.tombstone("k")
                + Array(
                    "{\"key\":\"foreign\",\"ts\":1,\"value\":{\"#type\":\"Json\",\"content\":1},\"blobs\":[]}\n".utf8))
        #expect(symlink(f.dir.child("foreign.jsonl"), f.index + "/y.jsonl.folding") == 0)
        try f.expectDebrisSkipped("y.jsonl.folding", kind: "a symbolic link")
        #expect(try f.run(["show", "--store", f.store, "foreign"]).status == 1)
        // Compaction neither read nor moved it.
        #expect(TestFiles.names(in: f.index).contains("y.jsonl.folding"))
        #expect(try TestFiles.read(f.dir.child("foreign.jsonl")).count > 0)
    }

    @Test("a folder named *.jsonl is skipped by every command")
    func folderNamedJSONL() throws {
        let f = try Fixture()
        try FileManager.default.createDirectory(atPath: f.index + "/x.jsonl", withIntermediateDirectories: false)
        try f.expectDebrisSkipped("x.jsonl", kind: "a directory")
    }

    @Test("a FIFO named *.jsonl never blocks a command")
    func fifoNamedJSONL() throws {
        let f = try Fixture()
        #expect(mkfifo(f.index + "/x.jsonl", 0o644) == 0)
        try f.expectDebrisSkipped("x.jsonl", kind: "a FIFO")
    }
}
