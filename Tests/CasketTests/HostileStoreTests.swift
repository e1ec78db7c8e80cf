import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A hostile user's store: links planted in the store's own folders, foreign files under store folder
/// names, a second user of the same group. Each test runs the real `casket` binary.
@Suite("Hostile stores: links, foreign folders, shared groups")
struct HostileStoreTests {
    let dir: TemporaryDirectory
    var store: String { dir.child("store") }
    var outside: String { dir.child("outside") }

    init() throws {
        dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.child("outside"), withIntermediateDirectories: true)
    }

    /// A store of loose blobs: these tests put links and foreign files where blob files go.
    func initStore(_ extra: [String] = []) throws {
        let created = try CLI.run(["init", "--durability", "none", "--pack-max", "0"] + extra + [store])
        #expect(created.status == 0, "\(created)")
    }

    /// Replaces a store folder by a link to `outside`, which gets the folder's old content.
    func replaceWithLink(_ relative: String) throws {
        let path = store + "/" + relative
        try FileManager.default.removeItem(atPath: outside)
        try FileManager.default.moveItem(atPath: path, toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: outside)
    }

    @Test(
        "casket set refuses a store whose blobs/, tmp/ or fan-out folder is a symbolic link, and writes nothing there",
        arguments: ["blobs", "tmp", "fanout"])
    func setRefusesLinkedFolders(_ folder: String) throws {
        try initStore()
        let payload = TestBytes.random(10_000, seed: 3)
        let digest = Digest(hashing: payload)
        try TestFiles.write(dir.child("input"), payload)
        let relative = folder == "fanout" ? "blobs/" + digest.hex.prefix(2) : folder
        try replaceWithLink(relative)
        let before = TestFiles.regularFiles(under: outside)
        let set = try CLI.run(["set", "--store", store, "k", dir.child("input")])
        #expect(set.status == 1, "\(set)")
        #expect(set.stderr.contains("'\(store)/\(relative)' is a symbolic link"), "\(set)")
        #expect(TestFiles.regularFiles(under: outside) == before)
        let get = try CLI.run(["get", "--store", store, "k"])
        #expect(get.status == 1, "\(get)")
    }

    @Test("a blob replaced by a link to a foreign file is not a blob: has exits 1, get never streams the target")
    func linkedBlobIsNotABlob() throws {
        try initStore()
        let payload = TestBytes.random(5_000, seed: 4)
        try TestFiles.write(dir.child("input"), payload)
        #expect(try CLI.run(["set", "--store", store, "k", dir.child("input")]).status == 0)
        let digest = Digest(hashing: payload)
        let blob = TestStore.rawPath(store, digest)
        let secret = outside + "/secret"
        try TestFiles.write(secret, Array("private bytes of someone else".utf8))
        try FileManager.default.removeItem(atPath: blob)
        try FileManager.default.createSymbolicLink(atPath: blob, withDestinationPath: secret)

        let has = try CLI.run(["blob", "has", "--store", store, digest.hex])
        #expect(has.status == 1, "\(has)")
        let get = try CLI.run(["get", "--store", store, "k"])
        #expect(get.status == 1, "\(get)")
        #expect(get.stderr.contains("is a symbolic link"), "\(get)")
        #expect(!get.stdout.contains("private bytes"), "\(get)")
        // A writer of the same payload replaces the link with the real blob.
        #expect(try CLI.run(["set", "--store", store, "k2", dir.child("input")]).status == 0)
        #expect(TestFiles.info(blob)?.isRegularFile == true)
        #expect(try CLI.run(["get", "--store", store, "k"]).status == 0)
        #expect(try TestFiles.read(secret) == Array("private bytes of someone else".utf8))
    }

    @Test(
        "init refuses a folder whose store folder names hold foreign content, and changes nothing",
        arguments: [
            "blobs/ab", "blobs/ab/99aa06d3014798d86001c324468d497f", "blobs/AB/x", "tmp/old.tmp",
            "tmp/host.12.0123456789abcdef.tmp/x", "index/x.jsonl", "claims/c", "gc/lock", "quarantine/q",
        ])
    func initRefusesForeignContent(_ relative: String) throws {
        let path = store + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try TestFiles.write(path, Array("someone's data".utf8))
        let created = try CLI.run(["init", store])
        #expect(created.status == 1, "\(created)")
        let folder = String(relative.prefix { $0 != "/" })
        #expect(created.stderr.contains("'\(store)/\(folder)' already holds 1 entry"), "\(created)")
        #expect(!FileManager.default.fileExists(atPath: store + "/casket.json"))
        #expect(try TestFiles.read(path) == Array("someone's data".utf8))
    }

    @Test("an init killed at any moment before casket.json is completed by the next init")
    func killedInitIsCompleted() throws {
        var interrupted = 0
        var attempts = 0
        while interrupted < 3 && attempts < 60 {
            attempts += 1
            try? FileManager.default.removeItem(atPath: store)
            let child = try CLI.start(["init", store])
            usleep(UInt32.random(in: 0...(2_000 + UInt32(attempts) * 200)))
            child.signal(SIGKILL)
            guard child.wait().signalled, !FileManager.default.fileExists(atPath: store + "/casket.json") else {
                continue
            }
            interrupted += 1
            let again = try CLI.run(["init", store])
            #expect(again.status == 0, "attempt \(attempts): \(again)")
            #expect(try CLI.run(["fsck", "--store", store]).status == 0)
        }
        #expect(interrupted > 0, "no init was interrupted before it published casket.json")
    }

    @Test("init completes what an interrupted init left: empty fan-out folders and temp files")
    func initCompletesLeftovers() throws {
        for hh in ["00", "0f", "a7"] {
            try FileManager.default.createDirectory(atPath: store + "/blobs/" + hh, withIntermediateDirectories: true)
        }
        try FileManager.default.createDirectory(atPath: store + "/tmp", withIntermediateDirectories: true)
        try TestFiles.write(store + "/tmp/some-host.4242.0123456789abcdef.tmp", Array("{".utf8))
        let created = try CLI.run(["init", store])
        #expect(created.status == 0, "\(created)")
        #expect(FileManager.default.fileExists(atPath: store + "/casket.json"))
    }

    @Test("init refuses a store folder name taken by a file or a link, and accepts empty folders")
    func initRefusesFilesAndLinks() throws {
        try FileManager.default.createDirectory(atPath: store + "/index", withIntermediateDirectories: true)
        try TestFiles.write(store + "/tmp", [1])
        let file = try CLI.run(["init", store])
        #expect(file.status == 1 && file.stderr.contains("'\(store)/tmp' exists and is a regular file"), "\(file)")
        try FileManager.default.removeItem(atPath: store + "/tmp")
        try FileManager.default.createSymbolicLink(atPath: store + "/blobs", withDestinationPath: outside)
        let link = try CLI.run(["init", store])
        #expect(link.status == 1 && link.stderr.contains("'\(store)/blobs' exists and is a symbolic link"), "\(link)")
        try FileManager.default.removeItem(atPath: store + "/blobs")
        let ok = try CLI.run(["init", store])
        #expect(ok.status == 0, "\(ok)")
        #expect(TestFiles.regularFiles(under: outside).isEmpty)
    }

    @Test(
        "two users of one group write, deduplicate against and read one store made with umask 002",
        .enabled(if: TestFiles.isRoot && CLITests.setpriv != nil, "needs root and setpriv to act as two users"))
    func twoUsersOfOneGroup() throws {
        let group = "4711"
        // The store's parent is the group's setgid folder, as an admin would make it.
        let shared = dir.child("shared")
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        #expect(chown(dir.path, 0, 4711) == 0 && chmod(dir.path, 0o755) == 0)
        #expect(chown(shared, 0, 4711) == 0 && chmod(shared, 0o2775) == 0)
        let storePath = shared + "/store"
        let payload = TestBytes.random(4_000, seed: 5)
        let input = dir.child("input")
        try TestFiles.write(input, payload)
        chmod(input, 0o644)
        let casket = try CLI.executable()
        func run(as user: String, _ arguments: [String]) throws -> ProcessOutput {
            try runProgram(
                "/bin/sh",
                [
                    "-c", "umask 002; exec \"$@\"", "sh", CLITests.setpriv!, "--reuid=\(user)", "--regid=\(group)",
                    "--clear-groups", casket,
                ] + arguments)
        }
        let made = try run(as: "4801", ["init", "--durability", "none", storePath])
        #expect(made.status == 0, "\(made)")
        #expect(try run(as: "4801", ["set", "--store", storePath, "a", input]).status == 0)
        // The second user writes the same payload (a dedup hit on a file it may not freshen) and a new one.
        let same = try run(as: "4802", ["set", "--store", storePath, "b", input])
        #expect(same.status == 0, "\(same)")
        try TestFiles.write(dir.child("other"), TestBytes.random(3_000, seed: 6))
        chmod(dir.child("other"), 0o644)
        let new = try run(as: "4802", ["set", "--store", storePath, "c", dir.child("other")])
        #expect(new.status == 0, "\(new)")
        for key in ["a", "b", "c"] {
            let got = try run(as: "4801", ["get", "--store", storePath, key])
            #expect(got.status == 0, "\(key): \(got)")
        }
        // Every folder is group-writable and kept the group.
        for folder in ["", "/blobs", "/tmp", "/index", "/claims", "/blobs/00"] {
            let st = try FileManager.default.attributesOfItem(atPath: storePath + folder)
            let mode = (st[.posixPermissions] as? Int) ?? 0
            #expect(mode & 0o070 == 0o070, "\(folder): \(String(mode, radix: 8))")
            #expect((st[.groupOwnerAccountID] as? Int) == 4711, "\(folder)")
        }
    }
}

extension HostileStoreTests {
    @Test(
        "gc and fsck never follow a linked store folder: the outside folder's old files survive, the link is named",
        arguments: ["tmp", "gc", "claims", "blobs/00", "blobs", "quarantine", "index"])
    func gcNeverFollowsLinkedFolders(_ folder: String) throws {
        try initStore()
        try TestFiles.write(dir.child("input"), TestBytes.random(2_000, seed: 8))
        #expect(try CLI.run(["set", "--store", store, "k", dir.child("input")]).status == 0)
        try replaceWithLink(folder)
        // Old files that a sweep of that folder would take: temp names, blob names, empty files.
        let old = Int(Date().timeIntervalSince1970) - 30 * 86_400
        let names = [
            "node.1.0123456789abcdef.tmp", "00" + String(repeating: "a", count: 30), "x.jsonl", "lock", "00",
        ]
        for name in names where !FileManager.default.fileExists(atPath: outside + "/" + name) {
            try TestFiles.write(outside + "/" + name, [])
        }
        let before = TestFiles.regularFiles(under: outside).sorted()
        for file in before { TestFiles.setMtime(outside + "/" + file, secondsSinceEpoch: old) }
        let link = "'\(store)/\(folder)' is a symbolic link"
        let gc = try CLI.run(["gc", "--grace", "1s", "--store", store])
        #expect(TestFiles.regularFiles(under: outside).sorted() == before, "\(gc)")
        if folder == "blobs/00" {
            // A linked fan-out folder is reported and skipped; the rest of the store is collected.
            #expect(gc.status == 0 && gc.stderr.contains("warning: \(link) (never followed)"), "\(gc)")
        } else {
            #expect(gc.status == 1 && gc.stderr.contains("refusing to collect garbage: \(link)"), "\(gc)")
        }
        let fsck = try CLI.run(["fsck", "--store", store])
        #expect(TestFiles.regularFiles(under: outside).sorted() == before, "\(fsck)")
        #expect(fsck.status == 5 && fsck.stdout.contains("unsafe  \(link)"), "\(fsck)")
        #expect(TestFiles.info(store + "/" + folder) != nil, "the link itself may be reported, never its target")
    }

    @Test("fsck reports a blob replaced by a link and never reads its target")
    func fsckReportsLinkedBlob() throws {
        try initStore()
        let payload = TestBytes.random(3_000, seed: 9)
        try TestFiles.write(dir.child("input"), payload)
        #expect(try CLI.run(["set", "--store", store, "k", dir.child("input")]).status == 0)
        let blob = TestStore.rawPath(store, Digest(hashing: payload))
        // The link's target holds the right bytes: only a check of what the entry IS can tell.
        try TestFiles.write(outside + "/copy", payload)
        try FileManager.default.removeItem(atPath: blob)
        try FileManager.default.createSymbolicLink(atPath: blob, withDestinationPath: outside + "/copy")
        let fsck = try CLI.run(["fsck", "--store", store])
        #expect(fsck.status != 0, "\(fsck)")
        #expect((fsck.stdout + fsck.stderr).contains(Digest(hashing: payload).hex), "\(fsck)")
        #expect(try TestFiles.read(outside + "/copy") == payload)
    }
}
