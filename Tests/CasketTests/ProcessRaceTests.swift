import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real `casket` processes racing and dying (invariants I1, I2, I3).
@Suite("casket processes: races and kill -9", .serialized)
struct ProcessRaceTests {
    @Test("8 simultaneous 'casket blob put' of one 64 MiB file leave exactly one sound blob (20 rounds)")
    func eightWritersOneBlob() throws {
        try withTemporaryDirectory { dir in
            let casket = try CLI.executable()
            let file = dir + "/input-64m"
            try TestBytes.writeLargeFile(file, size: 64 << 20, seed: 64)
            let expected = Digest(hashing: try TestFiles.read(file))
            for round in 0..<20 {
                // The first rounds flush (fsync) like production stores; the rest skip it for speed.
                let durability: StoreConfig.Durability = round < 4 ? .fsync : .none
                let roundDir = dir + "/round\(round)"
                try FileManager.default.createDirectory(atPath: roundDir, withIntermediateDirectories: true)
                let store = try TestStore.create(in: roundDir, durability: durability)
                let barrier = try StartBarrier(in: roundDir)
                var children: [Child] = []
                for id in 0..<8 {
                    children.append(
                        try Child(
                            executable: "/bin/sh",
                            arguments: [
                                "-c", barrier.script(id: id), "sh", casket, "blob", "put", "--json",
                                "--store", store.root, file,
                            ]))
                }
                try barrier.release(waitingFor: 8)
                let outputs = children.map { $0.wait() }
                var fresh = 0
                for output in outputs {
                    #expect(output.status == 0, "round \(round): \(output)")
                    #expect(output.stdout.contains(expected.hex), "round \(round): \(output)")
                    if output.stdout.contains("\"deduplicated\":false") { fresh += 1 }
                }
                #expect(fresh == 1, "round \(round): exactly one writer publishes, the others deduplicate")
                let files = TestStore.blobFiles(store.root)
                #expect(files == [String(expected.hex.prefix(2)) + "/" + expected.hex], "round \(round): \(files)")
                #expect(TestStore.tempFiles(store.root).isEmpty, "round \(round): tmp/ is empty")
                #expect(TestStore.problems(store).isEmpty, "round \(round)")
                #expect(try store.statistics().blobBytes == 64 << 20, "on-disk inflation 1.00x")
                try FileManager.default.removeItem(atPath: roundDir)
            }
        }
    }

    @Test("kill -9 of 'casket blob put' of 256 MiB at random moments never exposes a partial blob (20 rounds)")
    func killNineDuringPut() throws {
        try withTemporaryDirectory { dir in
            _ = try CLI.executable()
            let file = dir + "/input-256m"
            try TestBytes.writeLargeFile(file, size: 256 << 20, seed: 256)
            let stores = [
                try TestStore.create(in: dir, name: "fsync", durability: .fsync),
                try TestStore.create(in: dir, name: "fast", durability: .none),
            ]
            // How long one put takes here, to spread the kills over all its phases (hash, copy, flush, publish).
            var timing = [Double](repeating: 0.5, count: 2)
            for (k, store) in stores.enumerated() {
                let start = Date()
                let output = try CLI.run(["blob", "put", "--store", store.root, file])
                #expect(output.status == 0, "\(output)")
                timing[k] = Date().timeIntervalSince(start)
            }
            var generator = SystemRandomNumberGenerator()
            var finishedBeforeKill = 0
            for round in 0..<20 {
                // Every fifth round flushes (fsync), the others skip it to keep the test fast.
                let which = round % 5 == 0 ? 0 : 1
                let store = stores[which]
                // A new payload every round: overwrite the first 8 bytes with the round number.
                try stamp(file, round)
                let delay = Double.random(in: 0...(timing[which] * 1.1), using: &generator)
                let child = try CLI.start(["blob", "put", "--store", store.root, file])
                usleep(UInt32(delay * 1_000_000))
                child.signal(SIGKILL)
                let output = child.wait()
                if output.status == 0 { finishedBeforeKill += 1 }
                #expect(
                    output.status == 0 || output.status == 128 + SIGKILL,
                    "round \(round) (kill after \(delay) s): \(output)")

                // I1: whatever the moment, every file under blobs/ is a complete, verified blob.
                #expect(TestStore.problems(store).isEmpty, "round \(round) (kill after \(delay) s)")
                let leftovers = TestStore.tempFiles(store.root)
                for name in leftovers {
                    #expect(TestStore.isTempFileName(name), "round \(round): unexpected file in tmp/: \(name)")
                    #expect(name.contains(".\(child.pid)."), "round \(round): \(name) is the killed child's")
                }
                // GC's job, done here to keep the disk small.
                for name in leftovers { try FileManager.default.removeItem(atPath: store.root + "/tmp/" + name) }

                // I3: a rerun completes the interrupted job.
                let rerun = try CLI.run(["blob", "put", "--store", store.root, "--json", file])
                #expect(rerun.status == 0, "round \(round): \(rerun)")
                let digest = try hashFile(file)
                #expect(rerun.stdout.contains(digest.hex))
                #expect(store.locate(digest)?.size == 256 << 20)
                #expect(TestStore.tempFiles(store.root).isEmpty)
            }
            for store in stores { #expect(TestStore.problems(store).isEmpty) }
            // 20 rounds + the two timing puts, one blob each.
            #expect(stores.map { TestStore.blobFiles($0.root).count }.reduce(0, +) == 22)
            #expect(
                finishedBeforeKill < 10, "most kills must land during the put (\(finishedBeforeKill) finished first)")
        }
    }

    /// The digest of a file, streamed.
    func hashFile(_ path: String) throws -> Digest {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var hasher = StreamingHasher()
        while let data = try handle.read(upToCount: 4 << 20), !data.isEmpty {
            data.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }

    /// Writes `round` into the first 8 bytes of a file, giving it a new hash.
    func stamp(_ path: String, _ round: Int) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: withUnsafeBytes(of: UInt64(round + 1000).littleEndian) { Data($0) })
    }
}
