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

    @Test("kill -9 of a holder on this host, boot and PID namespace: its claim is taken over at once")
    func takeOverAfterKill() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let helper = try Casket.helper()
            let log = dir + "/computed.log"
            // The first worker computes for a minute; it is killed once its claim exists.
            let victim = try Child(
                executable: helper, arguments: ["compute", store.root, "30", log, "1", "60000", "0"])
            let board = try ClaimBoard(store: store, ttl: .seconds(30))
            var waited = 0
            while try board.list().isEmpty && waited < 200 {
                usleep(20_000)
                waited += 1
            }
            #expect(try board.list().count == 1)
            // The CLI lists the live claim with its holder.
            let listing = try Casket.run(["claims", "--store", store.root, "--ttl", "30", "--json"])
            #expect(listing.status == 0, "\(listing)")
            let object = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [String: Any] ?? [:]
            let claims = object["claims"] as? [[String: Any]] ?? []
            #expect(claims.count == 1)
            #expect(claims.first?["key"] as? String == "k0")
            #expect(claims.first?["pid"] as? Int == Int(victim.pid))
            #expect(claims.first?["state"] as? String == "live")
            #expect((object["strays"] as? [Any])?.isEmpty == true)
            // The claim exists before the compute starts: kill the victim mid-compute.
            while Self.computeLog(log)["k0"] == nil && waited < 500 {
                usleep(20_000)
                waited += 1
            }
            victim.signal(SIGKILL)
            _ = victim.wait()
            let began = Date()
            let out = try runProgram(helper, ["compute", store.root, "30", log, "1", "0", "0"])
            #expect(out.status == 0, "\(out)")
            #expect(Date().timeIntervalSince(began) < 15, "waited for the TTL although the holder's pid is dead here")
            #expect(Self.computeLog(log)["k0"]?.count == 2)
            #expect(try CacheStore(blobs: store).contains("k0"))
            #expect(try board.list().isEmpty, "the claim is released")
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
            let board = try ClaimBoard(store: store, ttl: .seconds(1.5))
            var waited = 0
            while try board.list().isEmpty && waited < 500 {
                usleep(20_000)
                waited += 1
            }
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
                        let board = try ClaimBoard(store: cache.blobs, ttl: .seconds(5))
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

    /// The claim file of `key`.
    static func claimPath(_ store: BlobStore, _ key: String) -> String {
        store.root + "/claims/" + Digest(hashing: Array(key.utf8)).hex
    }

    @Test("a claim from another host is never judged by its pid: live until its heartbeat is older than the TTL")
    func otherHostClaim() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let record =
                "{\"key\":\"k\",\"token\":\"00\",\"host\":\"node-b\",\"pid\":1,\"boot_id\":\"b\",\"pid_ns\":\"pid:[1]\","
                + "\"created\":1}\n"
            try TestFiles.write(Self.claimPath(store, "k"), Array(record.utf8))
            let board = try ClaimBoard(store: store, ttl: .seconds(1))
            guard case .busy(let holder) = try board.tryClaim("k") else {
                Issue.record("a fresh claim of another host was taken")
                return
            }
            #expect(holder.host == "node-b")
            #expect(holder.key == "k")
            usleep(1_100_000)
            guard case .acquired(let claim) = try board.tryClaim("k") else {
                Issue.record("a stale claim was not taken over")
                return
            }
            #expect(claim.lease.tookOver?.record?.host == "node-b")
            claim.release()
            #expect(try board.list().isEmpty)
        }
    }

    @Test("containers on one node: a claim of another PID namespace with the same host name waits for its TTL")
    func sameHostNameTwoPIDNamespaces() throws {
        guard Unshare.isAvailable else { return }
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let helper = try Casket.helper()
            let log = dir + "/computed.log"
            let holder = try Unshare.start(
                host: "twin", burnPids: 10, [helper, "compute", store.root, "3", log, "1", "60000", "0"])
            let board = try ClaimBoard(store: store, ttl: .seconds(3))
            var waited = 0
            while try board.list().isEmpty && waited < 500 {
                usleep(20_000)
                waited += 1
            }
            #expect(try board.list().first?.host == "twin")
            let taker = try Unshare.start(host: "twin", [helper, "compute", store.root, "3", log, "1", "0", "0"])
            usleep(4_000_000)  // more than a TTL: the holder's heartbeat keeps its claim
            #expect(Self.computeLog(log)["k0"]?.count == 1, "a worker of another PID namespace took a live claim")
            #expect(taker.isRunning)
            holder.signal(SIGKILL)
            _ = holder.wait()
            let killed = Date()
            let out = taker.wait()
            #expect(out.status == 0, "\(out)")
            #expect(Date().timeIntervalSince(killed) >= 1.5, "taken over before the TTL: judged by a foreign pid")
            #expect(Self.computeLog(log)["k0"]?.count == 2)
            #expect(try CacheStore(blobs: store).contains("k0"))
        }
    }

    @Test(
        "an empty, truncated or unparseable claim file is judged by its mtime: it blocks its key for one TTL only",
        arguments: ["", "{\"key\":\"k0\",\"tok", "not a claim\n"])
    func unreadableClaimFile(_ content: String) throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let path = Self.claimPath(store, "k0")
            try TestFiles.write(path, Array(content.utf8))
            let board = try ClaimBoard(store: store, ttl: .seconds(60))
            guard case .busy(let holder) = try board.tryClaim("k0") else {
                Issue.record("a fresh unreadable claim was taken")
                return
            }
            #expect(holder.lease.record == nil && holder.key == nil && !holder.isStale)
            let listing = try Casket.run(["claims", "--store", store.root, "--json"])
            #expect(listing.status == 0, "\(listing)")
            let object = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [String: Any] ?? [:]
            let claims = object["claims"] as? [[String: Any]] ?? []
            #expect(claims.count == 1 && claims.first?["readable"] as? Bool == false)
            #expect(claims.first?["state"] as? String == "live" && claims.first?["file"] as? String == path)
            TestFiles.setMtime(path, secondsSinceEpoch: Int(Date().timeIntervalSince1970) - 120)
            let log = dir + "/computed.log"
            let out = try runProgram(try Casket.helper(), ["compute", store.root, "60", log, "1", "0", "0"])
            #expect(out.status == 0, "\(out)")
            #expect(Self.computeLog(log)["k0"]?.count == 1)
            #expect(try board.list().isEmpty)
        }
    }

    @Test(
        "stray files and folders in claims/ are listed as strays and skipped; a folder under a claim's name is an error"
    )
    func straysAreReported() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let claims = store.root + "/claims"
            try TestFiles.write(claims + "/notes.txt", Array("hello\n".utf8))
            try FileManager.default.createDirectory(atPath: claims + "/sub", withIntermediateDirectories: true)
            let folder = Self.claimPath(store, "k9")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try TestFiles.write(Self.claimPath(store, "k8") + ".0", Array("{}".utf8))
            #expect(mkfifo(Self.claimPath(store, "k7"), 0o644) == 0)
            let board = try ClaimBoard(store: store, ttl: .seconds(60))
            guard case .acquired(let held) = try board.tryClaim("k1") else {
                Issue.record("k1 could not be claimed")
                return
            }
            defer { held.release() }
            let text = try Casket.run(["claims", "--store", store.root])
            #expect(text.status == 0, "\(text)")
            #expect(text.stdout.contains("live ") && text.stdout.contains("k1"), "\(text)")
            #expect(text.stdout.contains("stray  \(claims)/notes.txt"), "\(text)")
            let listing = try Casket.run(["claims", "--store", store.root, "--json"])
            #expect(listing.status == 0, "\(listing)")
            let object = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [String: Any] ?? [:]
            let strays = (object["strays"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
            #expect(
                Set(strays) == [claims + "/notes.txt", claims + "/sub", folder, Self.claimPath(store, "k8") + ".0"],
                "\(strays)")
            let reasons = Dictionary(
                uniqueKeysWithValues: (object["strays"] as? [[String: Any]] ?? []).map {
                    ($0["file"] as? String ?? "", $0["reason"] as? String ?? "")
                })
            #expect(reasons[claims + "/sub"] == "a folder, not a claim file")
            #expect(reasons[folder]?.contains("is a directory where a lease file belongs") == true)
            let listed = (object["claims"] as? [[String: Any]] ?? []).compactMap { $0["file"] as? String }
            #expect(Set(listed) == [Self.claimPath(store, "k1"), Self.claimPath(store, "k7")], "\(listed)")
            #expect {
                _ = try board.tryClaim("k9")
            } throws: { error in
                (error as? CasketError)?.code == .notARegularFile
                    && (error as? CasketError)?.message.contains("'\(folder)' is a directory") == true
            }
        }
    }

    @Test("a claim taken over while its holder paused is reported lost; its release leaves the successor's file")
    func releaseByToken() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let board = try ClaimBoard(store: store, ttl: .seconds(1))
            guard case .acquired(let held) = try board.tryClaim("k") else {
                Issue.record("k could not be claimed")
                return
            }
            let other = "{\"key\":\"k\",\"token\":\"ff\",\"host\":\"node-c\",\"pid\":1,\"created\":1}\n"
            try TestFiles.write(dir + "/other", Array(other.utf8))
            #expect(rename(dir + "/other", Self.claimPath(store, "k")) == 0)
            var waited = 0
            while !held.lost && waited < 100 {
                usleep(20_000)
                waited += 1
            }
            #expect(held.lost)
            held.release()
            #expect(try String(contentsOfFile: Self.claimPath(store, "k"), encoding: .utf8) == other)
        }
    }

    @Test("a release that meets another process's takeover file (a release finishing) waits for it and removes")
    func releaseWaitsForAFinishingRelease() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            let board = try ClaimBoard(store: store, ttl: .seconds(30))
            guard case .acquired(let held) = try board.tryClaim("k") else {
                Issue.record("k could not be claimed")
                return
            }
            // The previous holder's release, still holding the takeover file for a moment (a live record).
            let guardFile = Self.claimPath(store, "k") + ".takeover"
            let releaser = "{\"token\":\"ee\",\"host\":\"node-b\",\"pid\":1,\"created\":1}\n"
            try TestFiles.write(guardFile, Array(releaser.utf8))
            let released = Thread { held.release() }
            released.start()
            usleep(100_000)
            #expect(FileManager.default.fileExists(atPath: Self.claimPath(store, "k")), "waits while it is held")
            #expect(unlink(guardFile) == 0)
            var waited = 0
            while FileManager.default.fileExists(atPath: Self.claimPath(store, "k")) && waited < 200 {
                usleep(10_000)
                waited += 1
            }
            #expect(!FileManager.default.fileExists(atPath: Self.claimPath(store, "k")), "the claim is released")
            #expect(try board.list().isEmpty)
        }
    }

    @Test("a claim TTL of zero or less is refused, by the library and by casket claims")
    func nonPositiveTTL() throws {
        try withTemporaryDirectory { dir in
            let store = try BlobStore.create(at: dir + "/store", config: StoreConfig(durability: .none))
            #expect {
                _ = try ClaimBoard(store: store, ttl: .zero)
            } throws: { error in
                (error as? CasketError)?.code == .invalidArgument
                    && (error as? CasketError)?.message.contains("must be positive") == true
            }
            let run = try Casket.run(["claims", "--store", store.root, "--ttl", "0"])
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("--ttl must be a positive number"), "\(run)")
        }
    }
}
