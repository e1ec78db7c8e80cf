@_spi(Maintenance) import Casket
import CasketGC
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One collection at a time, across hosts.
@Suite("GC lock", .serialized)
struct GCLockTests {
    @Test("a collector holding the lock makes a second one refuse with exit code 3; released, it runs")
    func secondCollectorRefuses() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let lock = try GCLock.acquire(store, ttl: 60_000_000_000, heartbeatInterval: 200_000_000)
            let refused = try Casket.run(["gc", "--store", store.root])
            #expect(refused.status == 3, "\(refused)")
            #expect(refused.stderr.contains("another garbage collection"))
            // The lock file names its owner.
            let holder = try #require(GCLock.current(store))
            #expect(holder.pid == getpid())
            #expect(holder.host == StoreFiles.hostName)
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

    @Test("a lock of this host whose pid is dead is taken over at once")
    func deadLocalPid() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let finished = try runProgram("/bin/true", [])
            #expect(finished.status == 0)
            // A pid that existed and is gone: a child we started and reaped.
            let child = try Child(executable: "/bin/true", arguments: [])
            let deadPid = child.pid
            _ = child.wait()
            let text = "{\"host\":\"\(StoreFiles.hostName)\",\"pid\":\(deadPid),\"start\":1,\"token\":\"dead\"}\n"
            try TestFiles.write(store.root + "/gc/lock", Array(text.utf8))
            let run = try GCRun.json(["gc", "--store", store.root, "--lock-ttl", "1h"])
            #expect(run.status == 0, "\(run.output)")
            #expect((run.object["took_over_lock_from"] as? String)?.contains("pid \(deadPid)") == true)
        }
    }

    @Test("a lock from another host (unshare: own UTS and PID namespace) is respected while fresh, taken after the TTL")
    func otherHost() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), TestFiles.isRoot else { return }
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir)
            let helper = try Casket.helper()
            let log = dir + "/holder.log"
            let holder = try Child(
                executable: "/usr/bin/unshare",
                arguments: [
                    "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
                    "hostname node-b; exec \(helper) hold-lock \(store.root) 60 2",
                ],
                stdoutFile: log)
            #expect(GCRun.waitFor("held", in: log, seconds: 10), "the holder did not take the lock")
            let owner = try #require(GCLock.current(store))
            #expect(owner.host == "node-b")
            // Its pid (1 or 2 in its namespace) means nothing here; its heartbeat is fresh: respected.
            let arguments = ["gc", "--store", store.root, "--lock-ttl", "2s"]
            #expect(try Casket.run(arguments).status == 3)
            usleep(2_500_000)
            #expect(try Casket.run(arguments).status == 3, "a live holder's heartbeat keeps the lock")
            // The holder dies without releasing; its heartbeat stops. Not taken over until the TTL passes.
            holder.signal(SIGKILL)
            _ = holder.wait()
            #expect(GCLock.current(store)?.host == "node-b")
            #expect(try Casket.run(arguments).status == 3)
            usleep(2_600_000)
            let run = try GCRun.json(arguments)
            #expect(run.status == 0, "\(run.output)")
            #expect((run.object["took_over_lock_from"] as? String)?.contains("node-b") == true)
            #expect(GCLock.current(store) == nil)
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
