import Casket
import CasketTestSupport
import Foundation
import Testing

/// `casket stat` and `casket blob verify` see the payloads kept in packs (docs/FORMAT.md 3.7), sealed and
/// open, beside the blob files.
@Suite("stat and blob verify count packed payloads")
struct PackCountTests {
    static func json(_ output: ProcessOutput) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
    }

    /// A default store (packs below 65536 bytes) holding three small values, one of them set twice, and
    /// one large value; each `casket set` is a session of its own, so its pack is sealed when it ends.
    static func store(_ dir: String) throws -> (root: String, small: [[UInt8]]) {
        let root = dir + "/store"
        #expect(try CLI.run(["init", "--durability", "none", root]).status == 0)
        let small = (0..<3).map { TestBytes.random(1000 + $0, seed: UInt64(10 + $0)) }
        for (i, bytes) in small.enumerated() {
            try TestFiles.write(dir + "/s\(i)", bytes)
            #expect(try CLI.run(["set", "--store", root, "s\(i)", dir + "/s\(i)"]).status == 0)
        }
        #expect(try CLI.run(["set", "--store", root, "again", dir + "/s1"]).status == 0)
        try TestFiles.write(dir + "/large", TestBytes.random(100_000, seed: 20))
        #expect(try CLI.run(["set", "--store", root, "large", dir + "/large"]).status == 0)
        return (root, small)
    }

    @Test("stat counts sealed and open packs, their distinct payloads and bytes, apart from blob files")
    func statCountsPacks() throws {
        try withTemporaryDirectory { dir in
            let (root, small) = try Self.store(dir)
            let stat = try CLI.run(["stat", "--json", "--store", root])
            #expect(stat.status == 0, "\(stat)")
            let json = try Self.json(stat)
            #expect(json["blobs"] as? Int == 1 && json["keys"] as? Int == 5, "\(stat)")
            #expect(json["packs"] as? Int == 3 && json["sealed_packs"] as? Int == 3, "\(stat)")
            #expect(json["packed"] as? Int == 3 && json["pack_records"] as? Int == 3, "the second s1 is a dedup hit")
            #expect(json["packed_bytes"] as? Int == small.map(\.count).reduce(0, +))
            let onDisk = TestFiles.names(in: root + "/packs").reduce(Int64(0)) {
                $0 + (TestFiles.info(root + "/packs/" + $1)?.size ?? 0)
            }
            #expect(json["pack_bytes"] as? Int == Int(onDisk))
            // A session still open: its pack has no index yet, and its record is counted from its header.
            let session = try CacheStore.open(at: root).writeSession()
            try session.set("open", bytes: TestBytes.random(500, seed: 30))
            let open = try Self.json(try CLI.run(["stat", "--json", "--store", root]))
            #expect(open["packs"] as? Int == 4 && open["sealed_packs"] as? Int == 3 && open["packed"] as? Int == 4)
            let text = try CLI.run(["stat", "--store", root])
            #expect(text.stdout.contains("packed            4 payloads"), "\(text)")
            try session.close()
        }
    }

    @Test("blob verify re-hashes every pack record, and a damaged one exits 1 naming the pack and the offset")
    func verifyChecksPackRecords() throws {
        try withTemporaryDirectory { dir in
            let (root, _) = try Self.store(dir)
            let verify = try CLI.run(["blob", "verify", "--store", root])
            #expect(verify.status == 0, "\(verify)")
            #expect(verify.stdout.hasPrefix("verified 1 blobs and 3 pack records in 3 packs"), "\(verify)")
            let pack = try #require(TestFiles.names(in: root + "/packs").first { $0.hasSuffix(".pack") })
            try TestFiles.flipByte(root + "/packs/" + pack, at: PackRecord.headerSize + 10)
            let damaged = try CLI.run(["blob", "verify", "--store", root, "--json"])
            #expect(damaged.status == 1, "\(damaged)")
            let json = try Self.json(damaged)
            #expect(json["pack_records"] as? Int == 3 && json["ok"] as? Bool == false, "\(damaged)")
            let problems = json["problems"] as? [[String: Any]] ?? []
            #expect(!problems.isEmpty && problems.allSatisfy { $0["pack"] as? String == root + "/packs/" + pack })
            #expect(damaged.stderr.contains("pack '\(root)/packs/\(pack)' is damaged at offset 0"), "\(damaged)")
        }
    }
}
