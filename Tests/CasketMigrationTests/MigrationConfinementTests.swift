import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A hostile exca cache: `filename` fields and files that point outside the cache folder. Migration never
/// reads nor deletes anything outside SRC; each such entry is reported unmigratable with its reason.
@Suite(
    "Migration never reads or deletes outside SRC", .serialized,
    .enabled(if: ExcaFixtures.pythonAvailable, "python3 is needed to run the real exca"))
struct MigrationConfinementTests {
    /// A planted entry: its info line, and what the report must say about it.
    struct Attack {
        var key: String
        var fields: String
        var type: String
        var reason: String
        var code: String
    }

    /// What was planted in a cache, and where.
    struct Planted {
        var attacks: [Attack] = []
        /// Outside files with their bytes: nothing may read them into a blob, nor delete them.
        var secrets: [String: [UInt8]] = [:]
        /// Names inside the cache (relative) that must all still be there after `--reclaim`.
        var names: [String] = []
        /// Info files whose keys may be migrated but whose shard must be kept, with the reason.
        var keptShards: [String: String] = [:]
        /// Keys of planted shards that are sound values (they migrate).
        var soundKeys: Set<String> = []
        /// Info files that are not read at all, with the warning's words.
        var unreadInfoFiles: [String: String] = [:]
    }

    static func write(_ path: String, _ text: String) throws { try TestFiles.write(path, Array(text.utf8)) }

    static func secret(_ planted: inout Planted, _ path: String, seed: UInt64) throws {
        let bytes = TestBytes.random(4096, seed: seed)
        try TestFiles.write(path, bytes)
        planted.secrets[path] = bytes
    }

    /// Plants every attack in `cache`, each in its own shard `evil-N-info.jsonl`, with targets in `outside`.
    static func plant(cache: String, outside: String) throws -> Planted {
        var planted = Planted()
        let ownInfo = TestFiles.names(in: cache).first { $0.hasSuffix("-info.jsonl") } ?? "none-info.jsonl"
        let fm = FileManager.default
        try fm.createDirectory(atPath: outside + "/dir", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: outside + "/bv", withIntermediateDirectories: true)
        for n in 1...9 { try secret(&planted, outside + "/secret-\(n).bin", seed: 9000 + UInt64(n)) }
        try secret(&planted, outside + "/dir/secret.pkl", seed: 9100)
        try secret(&planted, outside + "/bv/x.vhdr", seed: 9101)
        try secret(&planted, outside + "/bv/x.eeg", seed: 9102)
        let pickle = { (name: String) in ##"{"filename":"\##(name)"}"## }
        let array = { (name: String) in ##"{"filename":"\##(name)","offset":0,"shape":[4096],"dtype":"uint8"}"## }
        var attacks = [
            Attack(
                key: "evil:dotdot", fields: pickle("../outside/secret-1.bin"), type: "Pickle", reason: "'..'",
                code: "unsafe_path"),
            Attack(
                key: "evil:dotdot-deep", fields: pickle("data/../../outside/secret-2.bin"), type: "Pickle",
                reason: "'..'", code: "unsafe_path"),
            Attack(
                key: "evil:absolute", fields: pickle(outside + "/secret-3.bin"), type: "Pickle", reason: "absolute",
                code: "unsafe_path"),
            Attack(
                key: "evil:device-name", fields: array("/dev/zero"), type: "MemmapArray", reason: "absolute",
                code: "unsafe_path"),
            Attack(
                key: "evil:empty-component", fields: pickle("data//evil.pkl"), type: "Pickle", reason: "empty",
                code: "unsafe_path"),
            Attack(
                key: "evil:nul", fields: pickle("data/evil\\u0000.pkl"), type: "Pickle", reason: "NUL",
                code: "unsafe_path"),
            Attack(
                key: "evil:index-file", fields: pickle(ownInfo), type: "Pickle", reason: "index file",
                code: "unsafe_path"),
            Attack(
                key: "evil:symlink", fields: pickle("data/evil-link.pkl"), type: "Pickle", reason: "symbolic link",
                code: "unsafe_path"),
            Attack(
                key: "evil:symlink-range", fields: array("data/evil-link.data"), type: "MemmapArray",
                reason: "symbolic link", code: "unsafe_path"),
            Attack(
                key: "evil:symlinked-folder", fields: pickle("evil-dir/secret.pkl"), type: "Pickle",
                reason: "symbolic link", code: "unsafe_path"),
            Attack(
                key: "evil:nested",
                fields:
                    ##"{"content":{"a":{"filename":"../outside/secret-6.bin","offset":0,"shape":[4096],"dtype":"uint8","#type":"MemmapArray"}}}"##,
                type: "Auto", reason: "'..'", code: "unsafe_path"),
            Attack(
                key: "evil:hardlink", fields: pickle("data/evil-hard.pkl"), type: "Pickle", reason: "hard links",
                code: "unsafe_path"),
            Attack(
                key: "evil:fifo", fields: pickle("data/evil.fifo"), type: "Pickle", reason: "FIFO",
                code: "not_a_regular_file"),
            Attack(
                key: "evil:folder-as-file", fields: pickle("data/evil-folder.pkl"), type: "Pickle", reason: "folder",
                code: "not_a_regular_file"),
            Attack(
                key: "evil:brainvision-file-link", fields: pickle("data/evil-bv"), type: "MneRawBrainVision",
                reason: "symbolic link", code: "unsafe_path"),
            Attack(
                key: "evil:brainvision-folder-link", fields: pickle("data/evil-bv-link"), type: "MneRawBrainVision",
                reason: "symbolic link", code: "unsafe_path"),
        ]
        let data = cache + "/data"
        try fm.createSymbolicLink(atPath: data + "/evil-link.pkl", withDestinationPath: outside + "/secret-4.bin")
        try fm.createSymbolicLink(atPath: data + "/evil-link.data", withDestinationPath: "../../outside/secret-5.bin")
        try fm.createSymbolicLink(atPath: cache + "/evil-dir", withDestinationPath: outside + "/dir")
        #expect(link(outside + "/secret-7.bin", data + "/evil-hard.pkl") == 0)
        #expect(mkfifo(data + "/evil.fifo", 0o644) == 0)
        try fm.createDirectory(atPath: data + "/evil-folder.pkl", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: data + "/evil-bv", withIntermediateDirectories: true)
        try TestFiles.write(data + "/evil-bv/evil-bv-raw.vhdr", Array("Brain Vision Data Exchange".utf8))
        try fm.createSymbolicLink(atPath: data + "/evil-bv/evil-bv-raw.eeg", withDestinationPath: outside + "/bv/x.eeg")
        try fm.createSymbolicLink(atPath: data + "/evil-bv-link", withDestinationPath: outside + "/bv")
        planted.names = [
            "data/evil-link.pkl", "data/evil-link.data", "evil-dir", "data/evil-hard.pkl", "data/evil.fifo",
            "data/evil-folder.pkl", "data/evil-bv", "data/evil-bv/evil-bv-raw.vhdr", "data/evil-bv/evil-bv-raw.eeg",
            "data/evil-bv-link",
        ]
        // A device node (as root): never opened, never read.
        if mknod(data + "/evil.dev", S_IFCHR | 0o644, dev_t((1 << 8) | 5)) == 0 {
            attacks.append(
                Attack(
                    key: "evil:device", fields: pickle("data/evil.dev"), type: "Pickle", reason: "character device",
                    code: "not_a_regular_file"))
            planted.names.append("data/evil.dev")
        }
        for (n, attack) in attacks.enumerated() {
            var line = String(attack.fields.dropLast())
            line += ##","#type":"\##(attack.type)","#key":"\##(attack.key)"}"## + "\n"
            try write(cache + "/evil-\(n)-info.jsonl", line)
            planted.names.append("evil-\(n)-info.jsonl")
        }
        planted.attacks = attacks
        // Shards whose writer's data file is a symlink to an outside file, or a folder: their one key is a
        // sound inline value (it migrates), but the shard is kept whole.
        let inline = { (key: String) in ##"{"content":"fine","#type":"Json","#key":"\##(key)"}"## + "\n" }
        try write(cache + "/evil-shard-link-info.jsonl", inline("evil:shard-link"))
        try fm.createSymbolicLink(
            atPath: data + "/evil-shard-link.data", withDestinationPath: outside + "/secret-8.bin")
        try write(cache + "/evil-shard-folder-info.jsonl", inline("evil:shard-folder"))
        try fm.createDirectory(atPath: data + "/evil-shard-folder.data.jsonl", withIntermediateDirectories: true)
        planted.keptShards = ["evil-shard-link-info.jsonl": "symbolic link", "evil-shard-folder-info.jsonl": "folder"]
        planted.soundKeys = ["evil:shard-link", "evil:shard-folder"]
        planted.names += [
            "evil-shard-link-info.jsonl", "data/evil-shard-link.data", "evil-shard-folder-info.jsonl",
            "data/evil-shard-folder.data.jsonl",
        ]
        // Info files that are a symlink to an outside file, a hard link to one, and a FIFO (no hang).
        try write(outside + "/evil-info.jsonl", inline("evil:info-link"))
        try fm.createSymbolicLink(
            atPath: cache + "/evil-link-info.jsonl", withDestinationPath: outside + "/evil-info.jsonl")
        try write(outside + "/evil-hard-info.jsonl", inline("evil:info-hard"))
        #expect(link(outside + "/evil-hard-info.jsonl", cache + "/evil-hard-info.jsonl") == 0)
        #expect(mkfifo(cache + "/evil-fifo-info.jsonl", 0o644) == 0)
        planted.unreadInfoFiles = [
            "evil-link-info.jsonl": "symbolic link", "evil-hard-info.jsonl": "hard links",
            "evil-fifo-info.jsonl": "FIFO",
        ]
        planted.names += Array(planted.unreadInfoFiles.keys)
        return planted
    }

    /// Runs `casket migrate` and fails the test instead of hanging (a FIFO opened for reading blocks).
    static func migrateWithin(_ seconds: Double, _ arguments: [String]) throws -> (ProcessOutput, [String: Any]) {
        let child = try Casket.start(["migrate"] + arguments + ["--json"])
        let deadline = Date().addingTimeInterval(seconds)
        while child.isRunning && Date() < deadline { usleep(50_000) }
        let hung = child.isRunning
        if hung { child.signal(SIGKILL) }
        let out = child.wait()
        #expect(!hung, "casket migrate hung (killed after \(seconds) s)")
        let object = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any] ?? [:]
        return (out, object)
    }

    static func blobSet(_ store: String) throws -> Set<Digest> {
        let cache = try CacheStore.open(at: store)
        var stored = Set<Digest>()
        try cache.blobs.forEachBlob { (file) throws(CasketError) in stored.insert(file.digest) }
        return stored
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    @Test("hostile filenames, links, FIFOs and devices are unmigratable; reclaim touches nothing outside SRC")
    func hostileCache() throws {
        // Every handler (BrainVision folders, pickles, parquet...), in a fixture no other suite uses.
        let fixture = try ExcaFixtures.fixture("0.6.0", handlers: "all", writers: 2, keys: 2)
        let work = try TemporaryDirectory(prefix: "casket-confine")
        let cache = work.child("cache")
        try ExcaFixtures.copy(fixture, to: cache)
        let planted = try Self.plant(cache: cache, outside: work.child("outside"))
        // The clean migration of the same cache: the blobs a hostile one may hold, and no other.
        let clean = work.child("clean")
        let (cleanOut, _) = try Self.migrateWithin(180, [fixture.cache, "--into", clean])
        #expect(cleanOut.status == 0, "\(cleanOut)")
        // SRC itself may be named through a symlink: the user chose it.
        let named = work.child("cache-link")
        try FileManager.default.createSymbolicLink(atPath: named, withDestinationPath: cache)
        let store = work.child("store")
        let (out, json) = try Self.migrateWithin(180, [named, "--into", store, "--reclaim"])
        #expect(out.status == 0, "\(out)")

        let notMigrated = json["not_migrated"] as? [[String: Any]] ?? []
        for attack in planted.attacks {
            let entry = notMigrated.first { $0["key"] as? String == attack.key }
            #expect(entry != nil, "\(attack.key) is not reported unmigratable: \(out.stdout.prefix(3000))")
            let reason = entry?["reason"] as? String ?? ""
            #expect(reason.contains(attack.reason), "\(attack.key): reason '\(reason)'")
            #expect(
                entry?["code"] as? String == attack.code, "\(attack.key): code \(String(describing: entry?["code"]))")
            #expect(entry?["file"] as? String != nil)
        }
        let warnings = json["warnings"] as? [String] ?? []
        for (file, words) in planted.unreadInfoFiles {
            #expect(
                warnings.contains { $0.hasPrefix(file) && $0.contains(words) }, "no warning for \(file): \(warnings)")
        }
        let kept = json["kept_shards"] as? [[String: Any]] ?? []
        for (n, attack) in planted.attacks.enumerated() {
            #expect(kept.contains { $0["shard"] as? String == "evil-\(n)-info.jsonl" }, "\(attack.key)'s shard")
        }
        for (shard, words) in planted.keptShards {
            let reason = kept.first { $0["shard"] as? String == shard }?["reason"] as? String ?? "(not kept)"
            #expect(reason.contains(words), "\(shard): \(reason)")
        }
        let own = TestFiles.names(in: fixture.cache).filter { $0.hasSuffix("-info.jsonl") }
        #expect(
            Set(json["reclaimed_shards"] as? [String] ?? []) == Set(own),
            "the fixture's own shards are reclaimed: \(kept)")

        // No blob holds outside bytes: the store has exactly the clean migration's blobs.
        #expect(try Self.blobSet(store) == Self.blobSet(clean))
        // Nothing outside SRC was deleted or changed, nothing planted in SRC was deleted.
        for (path, bytes) in planted.secrets {
            #expect((try? TestFiles.read(path)) == bytes, "\(path) was deleted or changed")
        }
        for name in planted.names { #expect(Self.exists(cache + "/" + name), "\(name) was deleted") }

        // Every other key is migrated with exca's value; no planted key but the sound ones is in the store.
        let (expected, actual) = try ExcaFixtures.values(of: fixture, store: store)
        let (loadable, _) = ExcaFixtures.loadable(expected)
        #expect(!loadable.isEmpty)
        for key in loadable.sorted() { #expect(actual[key] == expected[key], "value of \(key) differs from exca's") }
        for key in actual.keys where !loadable.contains(key) {
            #expect(planted.soundKeys.contains(key), "\(key) is in the store")
        }
    }

    @Test("in place: an entry naming the store's own files is unmigratable, and reclaim leaves the store whole")
    func inPlaceStoreFiles() throws {
        let fixture = try ExcaFixtures.fixture("0.6.0", handlers: "all", writers: 2, keys: 2)
        let work = try TemporaryDirectory(prefix: "casket-confine")
        let cache = work.child("cache")
        try ExcaFixtures.copy(fixture, to: cache)
        let (first, _) = try Self.migrateWithin(180, [cache, "--into", cache])
        #expect(first.status == 0, "\(first)")
        let blob = try #require(TestFiles.regularFiles(under: cache + "/blobs").first)
        let index = try #require(TestFiles.names(in: cache + "/index").first { $0.hasSuffix(".jsonl") })
        let targets = ["blobs/" + blob, "index/" + index, "casket.json"]
        for (n, target) in targets.enumerated() {
            try Self.write(
                cache + "/store-\(n)-info.jsonl",
                ##"{"filename":"\##(target)","#type":"Pickle","#key":"evil:store\##(n)"}"## + "\n")
        }
        let before = Dictionary(
            uniqueKeysWithValues: try targets.map { ($0, try TestFiles.read(cache + "/" + $0)) })
        let (out, json) = try Self.migrateWithin(180, [cache, "--into", cache, "--reclaim"])
        #expect(out.status == 0, "\(out)")
        let notMigrated = json["not_migrated"] as? [[String: Any]] ?? []
        for n in targets.indices {
            let entry = notMigrated.first { $0["key"] as? String == "evil:store\(n)" }
            #expect(entry?["code"] as? String == "unsafe_path", "evil:store\(n): \(String(describing: entry))")
            #expect((entry?["reason"] as? String)?.contains("store") == true)
        }
        for target in targets {
            #expect((try? TestFiles.read(cache + "/" + target)) == before[target], "\(target) was deleted or changed")
        }
        let store = try CacheStore.open(at: cache)
        try store.blobs.forEachBlob { (file) throws(CasketError) in try store.blobs.verify(file.digest) }
        let (expected, actual) = try ExcaFixtures.values(of: fixture, store: cache)
        let (loadable, _) = ExcaFixtures.loadable(expected)
        for key in loadable.sorted() { #expect(actual[key] == expected[key], "value of \(key) differs from exca's") }
    }
}
