import Casket
import CasketMigration
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Migrations of real exca caches, checked against what exca itself returns (invariant I5).
@Suite(
    "Migration of real exca caches", .serialized,
    .enabled(if: ExcaFixtures.pythonAvailable, "python3 is needed to run the real exca"))
struct MigrationTests {
    static let versions: [(String, String)] = [
        ("0.6.0", "all"), ("0.5.29", "all"), ("0.5.11", "core"), ("0.4.8", "core"), ("0.1.1", "core"),
    ]

    static func standardFixture(_ version: String, _ handlers: String) throws -> ExcaFixtures.Fixture {
        version == "0.1.1"
            ? try ExcaFixtures.fixture(version, writers: 2, keys: 3)
            : try ExcaFixtures.fixture(version, handlers: handlers, extra: ["--deletions", "--unloadable"])
    }

    /// Every key exca loads is in the store with exca's value; keys exca cannot load are absent or reported.
    static func expectSameValues(_ fixture: ExcaFixtures.Fixture, store: String, notMigrated: Set<String>) throws {
        let (expected, actual) = try ExcaFixtures.values(of: fixture, store: store)
        let (loadable, failing) = ExcaFixtures.loadable(expected)
        #expect(!loadable.isEmpty)
        for key in loadable.sorted() {
            #expect(actual[key] == expected[key], "value of \(key) differs from exca's")
        }
        for key in actual.keys where !loadable.contains(key) {
            // Only keys exca lists but fails to load (legacy 0-d arrays) may be here, never unknown keys.
            #expect(failing.contains(key), "\(key) is in the store but not in the exca cache")
        }
        for key in failing where actual[key] == nil {
            #expect(notMigrated.contains(key), "\(key) is neither migrated nor reported")
        }
    }

    static func notMigrated(_ json: [String: Any]) -> Set<String> {
        Set((json["not_migrated"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String })
    }

    /// Every blob verifies against its name, and the blobs, loose and packed (the destination's default
    /// packs small payloads), are exactly those the live entries reference.
    static func expectSoundStore(_ path: String) throws {
        let cache = try CacheStore.open(at: path)
        var referenced = Set<Digest>()
        for entry in try cache.entries() { referenced.formUnion(entry.blobs.map(\.digest)) }
        var stored = Set<Digest>()
        try cache.blobs.forEachBlob { (file) throws(CasketError) in
            try cache.blobs.verify(file.digest)
            stored.insert(file.digest)
        }
        stored.formUnion(try TestStore.packedDigests(cache.blobs))
        #expect(stored == referenced)
        for (key, count) in try ExcaFixtures.indexLinesPerKey(path) {
            #expect(count == 1, "\(key) has \(count) index lines")
        }
    }

    @Test("migrates every loadable key with exca's value, source unchanged", arguments: versions)
    func migrate(version: String, handlers: String) throws {
        let fixture = try Self.standardFixture(version, handlers)
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let before = try ExcaFixtures.checksums(fixture.cache)
        let store = work.child("store")
        let (out, json) = try ExcaFixtures.migrate([fixture.cache, "--into", store])
        #expect(out.status == 0, "\(out)")
        #expect(try ExcaFixtures.checksums(fixture.cache) == before, "the source changed")
        try Self.expectSameValues(fixture, store: store, notMigrated: Self.notMigrated(json))
        try Self.expectSoundStore(store)
        if version != "0.1.1" {
            #expect((json["duplicates_collapsed"] as? Int ?? 0) > 0)
            #expect((json["inflation_before"] as? Double ?? 0) > 1.5)
            #expect((json["bytes_after"] as? Int ?? .max) <= (json["unique_bytes"] as? Int ?? 0))
            let reasons = (json["not_migrated"] as? [[String: Any]] ?? []).map { "\($0["key"]!): \($0["reason"]!)" }
            #expect(reasons.contains { $0.hasPrefix("bad:solo:object: object dtype") })
            #expect(reasons.contains { $0.hasPrefix("bad:solo:struct: structured dtype") })
        }
    }

    @Test("into a store with packs: small payloads become pack records, values stay exca's")
    func intoPackedStore() throws {
        let fixture = try Self.standardFixture("0.6.0", "all")
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let store = work.child("store")
        #expect(try Casket.run(["init", store, "--pack-max", "65536"]).status == 0)
        let (out, json) = try ExcaFixtures.migrate([fixture.cache, "--into", store])
        #expect(out.status == 0, "\(out)")
        try Self.expectSameValues(fixture, store: store, notMigrated: Self.notMigrated(json))
        let shelf = try #require(try BlobStore.open(at: store).packShelf())
        let ids = try shelf.packIDs()
        #expect(!ids.isEmpty && ids.allSatisfy(\.sealed), "the session's pack is sealed")
        let records = try ids.reduce(0) { $0 + (try shelf.verify($1.id).records.count) }
        #expect(records > 0)
        let small = try BlobStore.open(at: store).statistics()
        #expect(small.blobs < (json["blobs_written"] as? Int ?? 0), "part of the payloads are packed")
        let fsck = try Casket.run(["fsck", "--store", store])
        #expect(fsck.status == 0, "\(fsck)")
    }

    @Test("a dry run prints the plan and writes nothing")
    func dryRun() throws {
        let fixture = try Self.standardFixture("0.6.0", "all")
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let before = try ExcaFixtures.checksums(fixture.cache)
        let store = work.child("store")
        let (out, json) = try ExcaFixtures.migrate([fixture.cache, "--into", store, "--dry-run"])
        #expect(out.status == 0, "\(out)")
        #expect(!FileManager.default.fileExists(atPath: store), "a dry run created the store")
        #expect(try ExcaFixtures.checksums(fixture.cache) == before)
        let keys = json["keys"] as? Int ?? 0
        let entries = json["entries"] as? Int ?? 0
        let duplicates = json["duplicate_copies"] as? Int ?? 0
        #expect(keys > 0 && duplicates > 0)
        #expect(entries == keys + Self.notMigrated(json).count + duplicates)
        #expect((json["bytes_on_disk"] as? Int ?? 0) > (json["unique_bytes"] as? Int ?? .max))
        #expect((json["bytes_to_write"] as? Int) == (json["unique_bytes"] as? Int))
        #expect(Self.notMigrated(json).isSuperset(of: ["bad:solo:object", "bad:solo:struct"]))
        let human = try Casket.run(["migrate", fixture.cache, "--into", store, "--dry-run"])
        #expect(human.stdout.contains("inflation") && human.stdout.contains("bad:solo:object"))
        #expect(!FileManager.default.fileExists(atPath: store))
    }

    @Test("in place: the store lives beside the exca files, a rerun does nothing")
    func inPlace() throws {
        let fixture = try Self.standardFixture("0.5.29", "all")
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let cache = work.child("cache")
        try ExcaFixtures.copy(fixture, to: cache)
        let before = try ExcaFixtures.checksums(cache)
        let (out, json) = try ExcaFixtures.migrate([cache, "--into", cache])
        #expect(out.status == 0, "\(out)")
        #expect(try ExcaFixtures.checksums(cache) == before)
        try Self.expectSameValues(fixture, store: cache, notMigrated: Self.notMigrated(json))
        let (again, second) = try ExcaFixtures.migrate([cache, "--into", cache])
        #expect(again.status == 0, "\(again)")
        #expect(second["keys_migrated"] as? Int == 0)
        #expect(second["keys_skipped_already_migrated"] as? Int == json["keys"] as? Int)
        #expect((second["warnings"] as? [Any] ?? [1]).isEmpty)
        try Self.expectSoundStore(cache)
    }

    @Test("kill -9 at random moments, then a rerun completes without duplicates")
    func resumeAfterKill() throws {
        let fixture = try ExcaFixtures.fixture(
            "0.6.0", writers: 3, keys: 40, extra: ["--array-shape", "16,40000", "--deletions"])
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let before = try ExcaFixtures.checksums(fixture.cache)
        let store = work.child("store")
        var generator = SystemRandomNumberGenerator()
        // Time one whole run, so that the kills land inside a run however fast this machine is.
        let began = Date()
        let (timed, _) = try ExcaFixtures.migrate([fixture.cache, "--into", work.child("timed")])
        #expect(timed.status == 0, "\(timed)")
        let duration = max(Date().timeIntervalSince(began), 0.02)
        // Kill runs at random moments until three were interrupted. A run that finished before its kill
        // before any was interrupted leaves a complete store: start over then, so that the kills land on a
        // store in every state of a first migration, not on trivial reruns.
        var killed = 0
        var attempts = 0
        while killed < 3 && attempts < 40 {
            attempts += 1
            let child = try Casket.start(["migrate", fixture.cache, "--into", store])
            usleep(UInt32(Double.random(in: 0.05...0.9, using: &generator) * duration * 1e6))
            child.signal(SIGKILL)
            if child.wait().signalled {
                killed += 1
            } else if killed == 0 {
                try? FileManager.default.removeItem(atPath: store)
            }
        }
        let (out, json) = try ExcaFixtures.migrate([fixture.cache, "--into", store])
        #expect(out.status == 0, "\(out)")
        #expect(killed > 0, "no run was interrupted: make the fixture larger")
        #expect(try ExcaFixtures.checksums(fixture.cache) == before)
        try Self.expectSameValues(fixture, store: store, notMigrated: Self.notMigrated(json))
        try Self.expectSoundStore(store)
    }

    @Test("reclaim deletes only verified shards; a shard with an unmigratable key is kept")
    func reclaim() throws {
        let fixture = try Self.standardFixture("0.6.0", "all")
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let cache = work.child("cache")
        try ExcaFixtures.copy(fixture, to: cache)
        let before = try ExcaFixtures.checksums(cache)
        let store = work.child("store")
        let (out, json) = try ExcaFixtures.migrate([cache, "--into", store, "--reclaim"])
        #expect(out.status == 0, "\(out)")
        let reclaimed = json["reclaimed_shards"] as? [String] ?? []
        let kept = (json["kept_shards"] as? [[String: Any]] ?? []).compactMap { $0["shard"] as? String }
        #expect(reclaimed.count >= 3, "the duplicate writers' shards are reclaimed")
        #expect(kept.count == 1, "the solo shard holds bad:solo:object and stays")
        let after = try ExcaFixtures.checksums(cache)
        // Nothing of a kept shard is touched; every surviving file is byte-identical.
        for (file, digest) in after { #expect(before[file] == digest, "\(file) changed") }
        for shard in kept {
            let prefix = String(shard.dropLast("-info.jsonl".count))
            #expect(after[shard] != nil)
            #expect(after["data/\(prefix).data"] != nil)
        }
        for shard in reclaimed {
            let prefix = String(shard.dropLast("-info.jsonl".count))
            #expect(
                after[shard] == nil && after["data/\(prefix).data"] == nil && after["data/\(prefix).data.jsonl"] == nil)
        }
        try Self.expectSameValues(fixture, store: store, notMigrated: Self.notMigrated(json))
        try Self.expectSoundStore(store)
    }

    @Test("reclaim keeps every file of a shard whose source no longer hashes to the stored blob")
    func reclaimRefusesMismatch() throws {
        let fixture = try ExcaFixtures.fixture("0.6.0", writers: 3, keys: 3)
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let cache = work.child("cache")
        try ExcaFixtures.copy(fixture, to: cache)
        let store = work.child("store")
        let (first, _) = try ExcaFixtures.migrate([cache, "--into", store])
        #expect(first.status == 0, "\(first)")
        // Flip the first byte of the first writer's data file: emg:shared0 of the winning copy.
        let infos = TestFiles.names(in: cache).filter { $0.hasSuffix("-info.jsonl") }
        let firstPrefix = String(infos[0].dropLast("-info.jsonl".count))
        try TestFiles.flipByte(cache + "/data/\(firstPrefix).data", at: 0)
        let before = try ExcaFixtures.checksums(cache)
        let (out, json) = try ExcaFixtures.migrate([cache, "--into", store, "--reclaim"])
        #expect(out.status == 0, "\(out)")
        let kept = (json["kept_shards"] as? [[String: Any]] ?? [])
        #expect(kept.contains { ($0["shard"] as? String) == infos[0] && "\($0["reason"]!)".contains("hash") })
        let after = try ExcaFixtures.checksums(cache)
        for (file, digest) in before where file.hasPrefix(firstPrefix) || file.hasPrefix("data/\(firstPrefix)") {
            #expect(after[file] == digest, "\(file) of the failing shard was touched")
        }
    }

    @Test("--verify-duplicates reports keys whose copies differ, and reads none without it")
    func verifyDuplicates() throws {
        let fixture = try ExcaFixtures.fixture("0.6.0", writers: 3, keys: 3)
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let cache = work.child("cache")
        try ExcaFixtures.copy(fixture, to: cache)
        let clean = try ExcaFixtures.migrate([cache, "--into", work.child("s1"), "--verify-duplicates"])
        #expect(clean.output.status == 0 && (clean.json["differing_duplicates"] as? [String])?.isEmpty == true)
        #expect(
            (clean.json["bytes_read"] as? Int) == (clean.json["unique_bytes"] as? Int),
            "duplicates are not read by the run")
        let infos = TestFiles.names(in: cache).filter { $0.hasSuffix("-info.jsonl") }
        let loser = String(infos[2].dropLast("-info.jsonl".count))
        try TestFiles.flipByte(cache + "/data/\(loser).data", at: 0)
        let dirty = try ExcaFixtures.migrate([cache, "--into", work.child("s2"), "--verify-duplicates"])
        #expect(dirty.output.status == 0)
        #expect((dirty.json["differing_duplicates"] as? [String] ?? []).contains("emg:shared0"))
    }
}
