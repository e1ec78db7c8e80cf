import Casket
import CasketTestSupport
import Foundation
import Testing

/// The settings of a new store (docs/FORMAT.md 2): version 2, packs below `pack_max` 65536 and group
/// commit by default, from `casket init` and `StoreConfig()`; `--pack-max 0` and `--durability fsync` stay
/// available, and a store of version 1 is never upgraded by writing to it.
@Suite("store defaults: version 2, packs and group commit")
struct StoreDefaultsTests {
    static func config(_ root: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(TestFiles.read(root + "/casket.json")))
        return try #require(object as? [String: Any])
    }

    @Test("casket init and StoreConfig() make a version 2 store that packs below 65536 bytes, group commit")
    func initDefaults() throws {
        #expect(StoreConfig.defaultPackMax == 65536)
        let library = StoreConfig()
        #expect(library.version == 2 && library.durability == .group && library.packMax == 65536)
        try withTemporaryDirectory { dir in
            let root = dir + "/store"
            let made = try CLI.run(["init", root, "--json"])
            #expect(made.status == 0 && made.stdout.contains("\"pack_max\":65536"), "\(made)")
            let config = try Self.config(root)
            #expect(config["version"] as? Int == 2 && config["durability"] as? String == "group")
            #expect(config["pack_max"] as? Int == 65536 && config["pack_size"] as? Int == 16 << 20)
            try TestFiles.write(dir + "/small", TestBytes.random(65535, seed: 1))
            try TestFiles.write(dir + "/edge", TestBytes.random(65536, seed: 2))
            #expect(try CLI.run(["set", "--store", root, "small", dir + "/small"]).status == 0)
            #expect(try CLI.run(["set", "--store", root, "edge", dir + "/edge"]).status == 0)
            #expect(TestStore.blobFiles(root).count == 1, "only the payload of exactly pack_max bytes is a blob file")
            #expect(TestFiles.names(in: root + "/packs").contains { $0.hasSuffix(".idx") })
            #expect(try CLI.run(["get", "--store", root, "small"]).status == 0)
            let migrated = try BlobStore.create(at: dir + "/library")
            #expect(migrated.config == StoreConfig())
        }
    }

    @Test("--pack-max 0 makes a version 1 store of loose blobs; --durability fsync is kept")
    func versionOneStaysAvailable() throws {
        try withTemporaryDirectory { dir in
            let root = dir + "/store"
            #expect(try CLI.run(["init", root, "--pack-max", "0", "--durability", "fsync"]).status == 0)
            let config = try Self.config(root)
            #expect(config["version"] as? Int == 1 && config["durability"] as? String == "fsync")
            #expect(config["pack_max"] == nil)
            try TestFiles.write(dir + "/small", Array("small".utf8))
            #expect(try CLI.run(["set", "--store", root, "k", dir + "/small"]).status == 0)
            #expect(TestStore.blobFiles(root).count == 1 && TestFiles.names(in: root + "/packs").isEmpty)
        }
    }

    @Test("a version 1 store written by an older release keeps its casket.json and stays loose")
    func versionOneIsNeverUpgraded() throws {
        try withTemporaryDirectory { dir in
            let root = dir + "/old"
            for folder in ["", "/blobs", "/tmp", "/index", "/gc", "/quarantine", "/claims"] {
                try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true)
            }
            let old = Array(
                "{\"format\":\"casket\",\"version\":1,\"hash\":\"xxh3-128\",\"compression\":\"none\",\"inline_max\":0}\n"
                    .utf8)
            try TestFiles.write(root + "/casket.json", old)
            let store = try BlobStore.open(at: root)
            #expect(store.config.durability == .fsync && !store.config.packs)
            try TestFiles.write(dir + "/small", Array("small".utf8))
            #expect(try CLI.run(["set", "--store", root, "k", dir + "/small"]).status == 0)
            #expect(try CLI.run(["blob", "put", "--store", root, dir + "/small"]).status == 0)
            let session = try CacheStore.open(at: root).writeSession()
            try session.set("s", bytes: Array("from a session".utf8))
            try session.close()
            #expect(try TestFiles.read(root + "/casket.json") == old)
            #expect(TestStore.blobFiles(root).count == 2 && !FileManager.default.fileExists(atPath: root + "/packs"))
            #expect(try CLI.run(["get", "--store", root, "k"]).stdout == "small")
        }
    }

    @Test("a put of a new 1 GiB file into a default store publishes one loose blob, never a pack")
    func largeValueStaysLoose() throws {
        try withTemporaryDirectory { dir in
            let root = dir + "/store"
            #expect(try CLI.run(["init", root]).status == 0)
            // Sparse, with a unique head: no 1 GiB is written to make it, the store writes its copy.
            let path = dir + "/big"
            try TestFiles.write(path, TestBytes.random(4096, seed: 3))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: 1 << 30)
            try handle.close()
            let put = try CLI.run(["blob", "put", "--store", root, "--json", path])
            #expect(put.status == 0 && put.stdout.contains("\"size\":1073741824"), "\(put)")
            let blobs = TestStore.blobFiles(root)
            #expect(blobs.count == 1)
            #expect(TestFiles.info(root + "/blobs/" + (blobs.first ?? ""))?.size == 1 << 30)
            #expect(!TestFiles.names(in: root + "/packs").contains { $0.hasSuffix(".pack") })
        }
    }
}
