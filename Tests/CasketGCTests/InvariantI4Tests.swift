import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Invariant I4 with real processes: GC never deletes a blob referenced by an entry live when it finishes,
/// with writers running throughout, including writers that deduplicate against old, unreferenced blobs.
@Suite("GC under concurrent writers (I4)", .serialized)
struct InvariantI4Tests {
    @Test("3 writers set/overwrite/delete and reuse old blobs while GCs loop (some killed -9): nothing live is lost")
    func writersAndCollectors() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let root = store.root
            let helper = try Casket.helper()
            // Old, unreferenced blobs that the writers will deduplicate against: prime GC candidates.
            let made = try runProgram(helper, ["make-old", root, "old/", "60", "3000", "3600"])
            #expect(made.status == 0, "\(made)")
            let seconds = 8.0
            let writers = try (0..<3).map { index in
                try Child(
                    executable: helper,
                    arguments: ["churn", root, "w\(index)", "\(seconds)", "old/", "60", "3000"],
                    stdoutFile: dir + "/w\(index).log")
            }
            let gcArguments = [
                "gc", "--store", root, "--grace", "2s", "--lock-ttl", "3s", "--heartbeat", "200ms", "--json",
            ]
            var completed = 0
            var refused = 0
            var killed = 0
            var swept = 0
            // Until the writers end, and at least four collections completed: a loaded machine runs fewer
            // collections in the writers' time, and the last ones then judge everything the writers left.
            let deadline = Date().addingTimeInterval(120)
            while writers.contains(where: \.isRunning) || (completed < 4 && Date() < deadline) {
                // One collector runs to the end; a second one races it for the lock and is often killed -9.
                let steady = try Casket.start(gcArguments)
                let victim = try Casket.start(gcArguments)
                usleep(UInt32.random(in: 0...120_000))
                if victim.isRunning {
                    victim.signal(SIGKILL)
                    killed += 1
                }
                for child in [steady, victim] {
                    let out = child.wait()
                    switch out.status {
                    case 0:
                        completed += 1
                        let line = out.stdout.split(separator: "\n").last.map(String.init) ?? ""
                        let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
                        swept += GCRun.int(object, "swept")
                    case 3: refused += 1
                    case 128 + SIGKILL: break
                    default: Issue.record("gc failed: \(out)")
                    }
                }
            }
            for (index, writer) in writers.enumerated() {
                let out = writer.wait()
                #expect(out.status == 0, "writer \(index): \(out)")
            }
            #expect(completed > 3, "collections completed: \(completed), refused \(refused), killed \(killed)")
            #expect(swept > 0, "the collectors must have had something to sweep")

            // Every writer owns its keys, so its log's last operation on a key is the key's state.
            var expected: [String: String?] = [:]
            for index in 0..<3 {
                let log = try String(contentsOfFile: dir + "/w\(index).log", encoding: .utf8)
                for line in log.split(separator: "\n") {
                    let parts = line.split(separator: " ").map(String.init)
                    if parts.count == 3 && parts[0] == "S" { expected[parts[1]] = .some(parts[2]) }
                    if parts.count == 2 && parts[0] == "D" { expected[parts[1]] = .some(nil) }
                }
            }
            #expect(expected.count > 100)
            let cache = try CacheStore.open(at: root)
            var live = 0
            for (key, hash) in expected {
                let entry = try cache.entry(key)
                if let hash {
                    live += 1
                    #expect(entry?.blobs.first?.digest.hex == hash, "key \(key)")
                    // Reads back, verified against its hash.
                    #expect(throws: Never.self, "key \(key) lost its blob") { _ = try cache.get(key) }
                } else {
                    #expect(entry == nil, "deleted key \(key) is live")
                }
            }
            #expect(live > 20)

            // A final quiet collection leaves no unreferenced blob older than the grace.
            sleep(3)
            let final = try GCRun.json(gcArguments.dropLast())
            #expect(final.status == 0, "\(final.output)")
            let referenced = try GCRun.referenced(root)
            let (digests, aside) = GCRun.blobDigests(root)
            #expect(aside.isEmpty, "files left aside: \(aside)")
            #expect(digests == referenced, "unreferenced left: \(digests.subtracting(referenced).count)")
            #expect(TestStore.problems(store).isEmpty)
            let fsck = try Casket.run(["fsck", "--store", root])
            #expect(fsck.status == 0, "\(fsck)")
        }
    }

    @Test("kill -9 of a collector at random moments: the store stays readable and the next GC completes")
    func killCollector() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let root = store.root
            let helper = try Casket.helper()
            let cache = CacheStore(blobs: store)
            let session = try cache.writeSession()
            for i in 0..<40 { try session.set("live/\(i)", bytes: TestBytes.random(2000, seed: UInt64(i + 1))) }
            try session.close()
            #expect(try runProgram(helper, ["make-old", root, "old/", "3000", "200", "3600"]).status == 0)
            // Time a dry run (the same mark and walk), so that the kills land inside a run on any machine.
            let began = Date()
            #expect(try Casket.run(["gc", "--store", root, "--grace", "1s", "--dry-run"]).status == 0)
            let duration = max(Date().timeIntervalSince(began), 0.01)
            var killed = 0
            var round = 0
            while killed < 8 && round < 30 {
                round += 1
                let gc = try Casket.start(["gc", "--store", root, "--grace", "1s", "--lock-ttl", "3s"])
                usleep(UInt32(Double.random(in: 0.2...1.0) * duration * 1e6))
                gc.signal(SIGKILL)
                if gc.wait().signalled { killed += 1 }
                let reader = try CacheStore.open(at: root)
                for i in 0..<40 {
                    #expect(throws: Never.self, "round \(round): live/\(i)") { _ = try reader.get("live/\(i)") }
                }
            }
            #expect(killed > 0, "no collector was interrupted")
            let final = try GCRun.json(["gc", "--store", root, "--grace", "1s", "--lock-ttl", "3s"])
            #expect(final.status == 0, "\(final.output)")
            let (digests, aside) = GCRun.blobDigests(root)
            #expect(aside.isEmpty)
            #expect(digests == (try GCRun.referenced(root)))
            #expect(!FileManager.default.fileExists(atPath: root + "/gc/lock"))
        }
    }
}
