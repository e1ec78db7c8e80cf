@_spi(Maintenance) import Casket
import CasketGC
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One collection at a time, across hosts, containers and PID namespaces.
@Suite("GC lock", .serialized)
struct GCLockTests {
    /// A record as this process would write it, with another pid, boot or namespace.
    static func record(pid: Int32, boot: String? = nil, namespace: String? = nil) throws -> String {
        let me = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let ns = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        return "{\"token\":\"0123456789abcdef0123456789abcdef\",\"host\":\"\(StoreFiles.hostName)\",\"pid\":\(pid),"
            + "\"boot_id\":\"\(boot ?? me)\",\"pid_ns\":\"\(namespace ?? ns)\",\"created\":1}\n"
    }

    /// A pid that existed and is gone: a child we started and reaped.
    static func deadPid() throws -> Int32 {
        let child = try Child(executable: "/bin/true", arguments: [])
        _ = child.wait()
        return child.pid
    }

    static func json(_ output: ProcessOutput) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("a collector holding the lock makes a second one refuse with exit code 3; released, it runs")
    func secondCollectorRefuses() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let lock = try GCLock.acquire(store, ttl: .seconds(60), heartbeatInterval: .milliseconds(200))
            let refused = try Casket.run(["gc", "--store", store.root])
            #expect(refused.status == 3, "\(refused)")
            #expect(refused.stderr.contains("another garbage collection holds"))
            // The lock file names its owner, its boot and its PID namespace.
            let holder = try #require(GCLock.current(store))
            #expect(holder.record?.pid == getpid())
            #expect(holder.record?.host == StoreFiles.hostName)
            #expect(holder.record?.token == lock.holder.token && lock.holder.token.count == 32)
            #expect(holder.record?.pidNamespace.hasPrefix("pid:[") == true)
            #expect(holder.record?.bootID.count == 36)
            // The heartbeat refreshes the lock's mtime.
            let before = holder.heartbeat
            usleep(600_000)
            #expect((GCLock.current(store)?.heartbeat ?? 0) > before)
            lock.release()
            #expect(GCLock.current(store) == nil)
            let ran = try Casket.run(["gc", "--store", store.root])
            #expect(ran.status == 0, "\(ran)")
        }
    }

    @Test("a collector killed with -9 on this host, boot and PID namespace is taken over at once")
    func deadLocalHolder() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let log = dir + "/holder.log"
            let holder = try Child(
                executable: try Casket.helper(), arguments: ["hold-lock", store.root, "60", "60"], stdoutFile: log)
            #expect(GCRun.waitFor("held", in: log, seconds: 10), "the holder did not take the lock")
            holder.signal(SIGKILL)
            _ = holder.wait()
            let run = try GCRun.json(["gc", "--store", store.root, "--lock-ttl", "1h"])
            #expect(run.status == 0, "\(run.output)")
            #expect((run.object["took_over_lock_from"] as? String)?.contains("pid \(holder.pid)") == true)
        }
    }

    @Test(
        "a dead pid is judged only on the same boot and PID namespace: another boot's or namespace's lock waits for its TTL",
        arguments: ["boot", "namespace", "unknown"])
    func pidOfAnotherBootOrNamespace(_ differs: String) throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let pid = try Self.deadPid()
            var text: String
            switch differs {
            case "boot": text = try Self.record(pid: pid, boot: "00000000-0000-0000-0000-000000000000")
            case "namespace": text = try Self.record(pid: pid, namespace: "pid:[1]")
            default: text = "{\"host\":\"\(StoreFiles.hostName)\",\"pid\":\(pid),\"start\":1,\"token\":\"old\"}\n"
            }
            try TestFiles.write(store.root + "/gc/lock", Array(text.utf8))
            let refused = try Casket.run(["gc", "--store", store.root, "--lock-ttl", "1h"])
            #expect(refused.status == 3, "\(refused)")
            #expect(refused.stderr.contains("pid \(pid) on \(StoreFiles.hostName)"), "\(refused)")
            TestFiles.setMtime(store.root + "/gc/lock", secondsSinceEpoch: GCRun.now - 7200)
            let run = try GCRun.json(["gc", "--store", store.root, "--lock-ttl", "1h"])
            #expect(run.status == 0, "\(run.output)")
        }
    }

    @Test("a lock from another host (unshare: own UTS and PID namespace) is respected while fresh, taken after the TTL")
    func otherHost() throws {
        guard Unshare.isAvailable else { return }
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let log = dir + "/holder.log"
            let holder = try Unshare.start(
                host: "node-b", [try Casket.helper(), "hold-lock", store.root, "60", "2"], stdoutFile: log)
            #expect(GCRun.waitFor("held", in: log, seconds: 10), "the holder did not take the lock")
            let owner = try #require(GCLock.current(store))
            #expect(owner.record?.host == "node-b")
            // Its pid means nothing here; its heartbeat is fresh: respected.
            let arguments = ["gc", "--store", store.root, "--lock-ttl", "2s"]
            #expect(try Casket.run(arguments).status == 3)
            usleep(2_500_000)
            #expect(try Casket.run(arguments).status == 3, "a live holder's heartbeat keeps the lock")
            // The holder dies without releasing; its heartbeat stops. Not taken over until the TTL passes.
            holder.signal(SIGKILL)
            _ = holder.wait()
            #expect(GCLock.current(store)?.record?.host == "node-b")
            #expect(try Casket.run(arguments).status == 3)
            usleep(2_600_000)
            let run = try GCRun.json(arguments)
            #expect(run.status == 0, "\(run.output)")
            #expect((run.object["took_over_lock_from"] as? String)?.contains("node-b") == true)
            #expect(GCLock.current(store) == nil)
        }
    }

    @Test("containers on one node: two PID namespaces with the same host name never take each other's live lock")
    func sameHostNameTwoPIDNamespaces() throws {
        guard Unshare.isAvailable else { return }
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let log = dir + "/holder.log"
            // The holder's pid (about 12) does not exist in the taker's fresh namespace.
            let holder = try Unshare.start(
                host: "twin", burnPids: 10, [try Casket.helper(), "hold-lock", store.root, "60", "2"],
                stdoutFile: log)
            #expect(GCRun.waitFor("held", in: log, seconds: 10), "the holder did not take the lock")
            #expect(GCLock.current(store)?.record?.host == "twin")
            let taker = [try Casket.executable(), "gc", "--store", store.root, "--lock-ttl", "2s", "--json"]
            let refused = try Unshare.run(host: "twin", taker)
            #expect(refused.status == 3, "a collector of another PID namespace took a live lock: \(refused)")
            #expect(refused.stdout.contains("another garbage collection holds"), "\(refused)")
            usleep(2_500_000)
            #expect(try Unshare.run(host: "twin", taker).status == 3, "a live holder's heartbeat keeps the lock")
            holder.signal(SIGKILL)
            _ = holder.wait()
            #expect(try Unshare.run(host: "twin", taker).status == 3, "taken before the TTL")
            usleep(2_600_000)
            let run = try Unshare.run(host: "twin", taker)
            #expect(run.status == 0, "\(run)")
            #expect((Self.json(run)["took_over_lock_from"] as? String)?.contains("on twin") == true)
        }
    }

    @Test("an empty lock file is judged by its mtime: respected while fresh, taken over once older than the TTL")
    func emptyLockFile() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            try TestFiles.write(store.root + "/gc/lock", [])
            let refused = try Casket.run(["gc", "--store", store.root, "--lock-ttl", "1h"])
            #expect(refused.status == 3, "\(refused)")
            #expect(refused.stderr.contains("an unreadable lease file"))
            TestFiles.setMtime(store.root + "/gc/lock", secondsSinceEpoch: GCRun.now - 7200)
            let run = try GCRun.json(["gc", "--store", store.root, "--lock-ttl", "1h"])
            #expect(run.status == 0, "\(run.output)")
            #expect(run.object["took_over_lock_from"] as? String == "an unreadable lease file")
        }
    }

    @Test("a folder under the lock's name is an error naming it (exit 1), never a lock held for ever")
    func folderUnderTheLockName() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            try FileManager.default.createDirectory(atPath: store.root + "/gc/lock", withIntermediateDirectories: true)
            TestFiles.setMtime(store.root + "/gc/lock", secondsSinceEpoch: GCRun.now - 7200)
            let run = try Casket.run(["gc", "--store", store.root])
            #expect(run.status == 1, "\(run)")
            #expect(run.stderr.contains("'\(store.root)/gc/lock' is a directory where a lease file belongs"), "\(run)")
        }
    }

    @Test("a lock taken over while its holder paused is reported lost, and its release leaves the new holder's file")
    func lostLock() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let lock = try GCLock.acquire(store, ttl: .seconds(60), heartbeatInterval: .milliseconds(100))
            #expect(!lock.isLost)
            let other = try Self.record(pid: 1)
            try TestFiles.write(dir + "/other", Array(other.utf8))
            #expect(rename(dir + "/other", store.root + "/gc/lock") == 0)
            var waited = 0
            while !lock.isLost && waited < 100 {
                usleep(20_000)
                waited += 1
            }
            #expect(lock.isLost, "the heartbeat did not notice another owner's token")
            lock.release()
            let left = try String(contentsOfFile: store.root + "/gc/lock", encoding: .utf8)
            #expect(left == other, "release removed another owner's lock")
        }
    }

    @Test("a TTL of zero or less is refused with a clear error")
    func nonPositiveTTL() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            for ttl in [Duration.zero, .seconds(-5)] {
                #expect {
                    _ = try GCLock.acquire(store, ttl: ttl)
                } throws: { error in
                    let error = error as? CasketError
                    return error?.code == .invalidArgument && error?.message.contains("must be positive") == true
                }
            }
            let run = try Casket.run(["gc", "--store", store.root, "--lock-ttl", "0"])
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("--lock-ttl must be greater than 0 (got '0')"), "\(run)")
            #expect(!FileManager.default.fileExists(atPath: store.root + "/gc/lock"))
        }
    }

    @Test("two collectors judging one stale lock: at most one takes it")
    func racingTakeover() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            for _ in 0..<5 {
                let text = "{\"host\":\"node-z\",\"pid\":1,\"start\":1,\"token\":\"stale\"}\n"
                try TestFiles.write(store.root + "/gc/lock", Array(text.utf8))
                TestFiles.setMtime(store.root + "/gc/lock", secondsSinceEpoch: GCRun.now - 3600)
                let helper = try Casket.helper()
                let logs = (0..<4).map { dir + "/take-\($0).log" }
                let takers = try logs.map {
                    try Child(executable: helper, arguments: ["hold-lock", store.root, "1.5", "60"], stdoutFile: $0)
                }
                usleep(700_000)
                let holding = logs.filter {
                    (try? String(contentsOfFile: $0, encoding: .utf8))?.contains("held") == true
                }
                #expect(holding.count == 1, "holders at once: \(holding.count)")
                for taker in takers { _ = taker.wait() }
            }
        }
    }
}
