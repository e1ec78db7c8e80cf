import Casket
import CasketTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Compute-once claims, with real processes for the cross-process guarantees.
@Suite("Compute-once claims", .serialized)
struct ClaimTests {
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }

    static func computeLog(_ path: String) -> [String: [String]] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var byKey: [String: [String]] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            byKey[String(parts[0]), default: []].append(String(parts[1]))
        }
        return byKey
    }

    @Test("16 processes, batch getOrCompute over the same 100 keys: each key is computed exactly once")
    func sixteenWorkersComputeOnce() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let helper = try Casket.helper()
            let log = dir + "/computed.log"
            let start = Self.now() + 1_500_000_000
            let workers = try (0..<16).map { _ in
                try Child(executable: helper, arguments: ["compute", store.root, "30", log, "100", "5", "\(start)"])
            }
            for worker in workers {
                let out = worker.wait()
                #expect(out.status == 0, "\(out)")
                #expect(out.stdout == "ok 100\n")
            }
            let computed = Self.computeLog(log)
            #expect(computed.count == 100)
            #expect(
                computed.values.allSatisfy { $0.count == 1 },
                "computed more than once: \(computed.filter { $0.value.count > 1 })")
            #expect(try CacheStore(blobs: store).keys().count == 100)
            #expect(try ClaimBoard(store: store).list().isEmpty, "every claim is released")
        }
    }

    @Test("kill -9 of a holder mid-compute: another worker takes over after the TTL and stores the key")
    func takeOverAfterKill() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let helper = try Casket.helper()
            let log = dir + "/computed.log"
            // The first worker computes for a minute; it is killed once its claim exists.
            let victim = try Child(executable: helper, arguments: ["compute", store.root, "1", log, "1", "60000", "0"])
            let board = ClaimBoard(store: store, ttlSeconds: 1)
            var waited = 0
            while try board.list().isEmpty && waited < 200 {
                usleep(20_000)
                waited += 1
            }
            #expect(try board.list().count == 1)
            // The CLI lists the live claim with its holder.
            let listing = try Casket.run(["claims", "--store", store.root, "--ttl", "1", "--json"])
            #expect(listing.status == 0, "\(listing)")
            let claims = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(claims.count == 1)
            #expect(claims.first?["key"] as? String == "k0")
            #expect(claims.first?["pid"] as? Int == Int(victim.pid))
            #expect(claims.first?["state"] as? String == "live")
            victim.signal(SIGKILL)
            _ = victim.wait()
            let began = Date()
            let out = try runProgram(helper, ["compute", store.root, "1", log, "1", "0", "0"])
            #expect(out.status == 0, "\(out)")
            #expect(Date().timeIntervalSince(began) >= 0.5, "took over before the claim went stale")
            #expect(Self.computeLog(log)["k0"]?.count == 2)
            #expect(try CacheStore(blobs: store).contains("k0"))
            #expect(try board.list().isEmpty, "the stale generation is cleaned up on release")
        }
    }

    @Test("a compute slower than the TTL keeps its claim through the heartbeat; the waiter gets its result")
    func heartbeatKeepsClaim() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let helper = try Casket.helper()
            let log = dir + "/computed.log"
            // TTL 1.5 s, heartbeat every 0.375 s, compute 4.5 s: three TTLs, with room for a loaded machine.
            let slow = try Child(executable: helper, arguments: ["compute", store.root, "1.5", log, "1", "4500", "0"])
            let board = ClaimBoard(store: store, ttlSeconds: 1.5)
            while try board.list().isEmpty { usleep(20_000) }
            let waiter = try runProgram(helper, ["compute", store.root, "1.5", log, "1", "0", "0"])
            #expect(waiter.status == 0, "\(waiter)")
            #expect(slow.wait().status == 0)
            #expect(Self.computeLog(log)["k0"]?.count == 1, "the waiter computed although the holder was alive")
        }
    }

    @Test("two store handles in one process behave like two processes")
    func twoHandlesOneProcess() throws {
        try withTemporaryDirectory { dir in
            let root = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none)).root
            let calls = Mutex<[String]>([])
            let errors = Mutex<[String]>([])
            let threads = (0..<2).map { index in
                Thread {
                    do {
                        let cache = try CacheStore.open(at: root)
                        let board = ClaimBoard(store: cache.blobs, ttlSeconds: 5)
                        let keys = (0..<20).map { "k\($0)" }
                        _ = try cache.getOrCompute(keys, board: board) { mine in
                            calls.withLock { $0.append(contentsOf: mine) }
                            usleep(50_000)
                            return Dictionary(uniqueKeysWithValues: mine.map { (IndexKey($0), Array("\($0)".utf8)) })
                        }
                    } catch {
                        errors.withLock { $0.append("thread \(index): \(error)") }
                    }
                }
            }
            threads.forEach { $0.start() }
            while threads.contains(where: { !$0.isFinished }) { usleep(10_000) }
            #expect(errors.withLock { $0 }.isEmpty)
            let computed = calls.withLock { $0 }
            #expect(computed.count == 20 && Set(computed).count == 20)
        }
    }

    @Test("a claim from another host is never judged by its pid: live until its heartbeat is older than the TTL")
    func otherHostClaim() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let hash = Digest(hashing: Array("k".utf8)).hex
            let record =
                "{\"key\":\"k\",\"host\":\"node-b\",\"pid\":1,\"token\":\"00\",\"started\":1,\"generation\":0}\n"
            try TestFiles.write(store.root + "/claims/\(hash).0", Array(record.utf8))
            let board = ClaimBoard(store: store, ttlSeconds: 1)
            guard case .busy(let holder) = try board.tryClaim("k") else {
                Issue.record("a fresh claim of another host was taken")
                return
            }
            #expect(holder.host == "node-b")
            usleep(1_100_000)
            guard case .acquired(let claim) = try board.tryClaim("k") else {
                Issue.record("a stale claim was not taken over")
                return
            }
            #expect(claim.generation == 1)
            claim.release()
            #expect(try board.list().isEmpty)
        }
    }
}
