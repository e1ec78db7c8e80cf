import Casket
import CasketTestSupport
import Foundation
import Testing

/// Migration keeps exca's keys as byte strings: two keys (or two file names) that differ only in Unicode
/// normalisation are two keys for exca, and stay two through the plan, the run and `--reclaim`.
@Suite("migration: keys are byte strings")
struct KeyBytesMigrationTests {
    static let cafeNFC = "caf\u{E9}"
    static let cafeNFD = "cafe\u{301}"
    static let pickleNFC = "pkl-\u{F1}"
    static let pickleNFD = "pkl-n\u{303}"
    static let oNFC = "\u{F6}"
    static let oNFD = "o\u{308}"

    static func write(_ path: String, _ text: String) throws { try TestFiles.write(path, Array(text.utf8)) }

    static func line(_ fields: String, key: String) -> String {
        "{\(fields),\"#key\":\"\(key)\"}\n"
    }

    @Test(
        "an exca 0.6.0 cache with NFC and NFD keys: both migrated with their own values, reclaim deletes nothing a live key needs"
    )
    func nfcAndNFDKeys() throws {
        let work = try TemporaryDirectory(prefix: "casket-mig")
        let cache = work.child("cache")
        try FileManager.default.createDirectory(atPath: cache + "/data", withIntermediateDirectories: true)
        let shared = TestBytes.random(16, seed: 3)
        try TestFiles.write(cache + "/data/h-1.data", shared)
        // Per-key files whose names differ only in normalisation, as exca derives them from the keys.
        let pickleA = TestBytes.random(40, seed: 4)
        let pickleB = TestBytes.random(40, seed: 5)
        let pickleO = TestBytes.random(40, seed: 6)
        try TestFiles.write(cache + "/data/\(Self.pickleNFC).pkl", pickleA)
        try TestFiles.write(cache + "/data/\(Self.pickleNFD).pkl", pickleB)
        try TestFiles.write(cache + "/data/o.pkl", pickleO)
        let memmap = ##""filename":"data/h-1.data","shape":[8],"dtype":"uint8","#type":"MemmapArray""##
        try Self.write(
            cache + "/h-1-info.jsonl",
            Self.line(memmap + ",\"offset\":0", key: Self.cafeNFC)
                + Self.line(memmap + ",\"offset\":8", key: Self.cafeNFD)
                + Self.line(##""filename":"data/\##(Self.pickleNFC).pkl","#type":"Pickle""##, key: Self.pickleNFC)
                + Self.line(##""filename":"data/\##(Self.pickleNFD).pkl","#type":"Pickle""##, key: Self.pickleNFD)
                + Self.line(##""filename":"data/o.pkl","#type":"Pickle""##, key: Self.oNFC))
        // Another writer's shard holds the NFD form of "ö", whose file is gone: exca cannot read it either.
        try Self.write(
            cache + "/h-2-info.jsonl", Self.line(##""filename":"data/gone.pkl","#type":"Pickle""##, key: Self.oNFD))
        let store = work.child("store")
        let (first, firstJSON) = try ExcaFixtures.migrate([cache, "--into", store])
        #expect(first.status == 0, "\(first)")
        #expect(firstJSON["keys_migrated"] as? Int == 5, "\(first)")
        // A rerun finds every key already migrated, each form by its own origin; then reclaim.
        let (out, json) = try ExcaFixtures.migrate([cache, "--into", store, "--reclaim"])
        #expect(out.status == 0, "\(out)")
        #expect(json["keys_skipped_already_migrated"] as? Int == 5, "\(out)")
        let unmigratable = (json["not_migrated"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
        #expect(unmigratable.map { Array($0.utf8) } == [Array(Self.oNFD.utf8)], "\(out)")
        #expect(json["reclaimed_shards"] as? [String] == ["h-1-info.jsonl"], "\(out)")
        let kept = (json["kept_shards"] as? [[String: Any]] ?? []).compactMap { $0["shard"] as? String }
        #expect(kept == ["h-2-info.jsonl"], "the shard of the unmigratable NFD key stays")
        #expect(FileManager.default.fileExists(atPath: cache + "/h-2-info.jsonl"))

        let migrated = try CacheStore.open(at: store)
        #expect(try migrated.get(Self.cafeNFC) == Array(shared[0..<8]))
        #expect(try migrated.get(Self.cafeNFD) == Array(shared[8..<16]))
        #expect(try migrated.get(Self.pickleNFC) == pickleA)
        #expect(try migrated.get(Self.pickleNFD) == pickleB)
        #expect(try migrated.get(Self.oNFC) == pickleO)
        #expect(try migrated.contains(Self.oNFD) == false)
        #expect(try migrated.keys().count == 5)
    }
}
