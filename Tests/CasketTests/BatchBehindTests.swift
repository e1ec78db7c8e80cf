import Casket
import CasketTestSupport
import Foundation
import Testing

/// Group commit writes a full batch on another thread while the session fills the next one (docs/FORMAT.md
/// 5.5). These tests hold that thread inside the flush of the session's pack (the session's test hook runs
/// just before the `fdatasync`) and check that no line of the batch, and no seal line or pack index, gets
/// ahead of it, and that a failed flush loses the lines that could name its records.
@Suite("group commit: a full batch is written behind")
struct BatchBehindTests {
    /// Holds the flusher's thread in the hook until opened, for good; counts the calls.
    final class Gate: @unchecked Sendable {
        private let entered = DispatchSemaphore(value: 0)
        private let state = NSCondition()
        private var open = false
        private var count = 0
        var calls: Int { state.withLock { count } }

        func pass() {
            state.withLock { count += 1 }
            entered.signal()
            state.withLock { while !open { state.wait() } }
        }

        func waitEntered() -> Bool { entered.wait(timeout: .now() + 30) == .success }

        func release() {
            state.withLock {
                open = true
                state.broadcast()
            }
        }
    }

    /// Closes a session on another thread (the test's own waits on the flusher's).
    final class Closer: @unchecked Sendable {
        let session: WriteSession
        let done = DispatchSemaphore(value: 0)
        /// Set before `done` is signalled.
        var outcome: String?

        init(_ session: WriteSession) { self.session = session }

        func run() {
            do {
                try session.close()
                outcome = "ok"
            } catch {
                outcome = "\(error)"
            }
            done.signal()
        }
    }

    /// A session of a new store with packs under group commit, whose batches only their count hands over,
    /// and whose flusher's thread `gate` holds before each pack flush (which then fails with `failing`).
    static func heldSession(
        in dir: String, packSize: Int64 = StoreConfig.defaultPackSize, failing: String? = nil
    ) throws -> (BlobStore, WriteSession, Gate) {
        let store = try TestStore.create(in: dir, durability: .group, packMax: 65536, packSize: packSize)
        let session = try CacheStore.open(at: store.root).writeSession()
        session.batchAge = .seconds(3600)
        let gate = Gate()
        session.beforePackFlushBehind = { () throws(CasketError) in
            gate.pass()
            if let failing { throw CasketError(.io, failing) }
        }
        return (store, session, gate)
    }

    static func lines(_ root: String) -> [Substring] {
        TestFiles.names(in: root + "/index").flatMap { name in
            ((try? String(contentsOfFile: root + "/index/" + name, encoding: .utf8)) ?? "").split(separator: "\n")
        }
    }

    @Test("no line of a batch written behind reaches the index before its pack is flushed; sets go on meanwhile")
    func linesWaitForThePackFlush() throws {
        try withTemporaryDirectory { dir in
            let (store, session, gate) = try BatchBehindTests.heldSession(in: dir)
            for i in 0..<WriteSession.groupLines {
                try session.set("n\(i)", bytes: TestBytes.random(4096, seed: UInt64(i)))
            }
            #expect(gate.waitEntered(), "the full batch was handed over and its pack flush started")
            // The flusher's thread is held before the pack's fdatasync: the session is not.
            for i in 0..<500 { try session.set("m\(i)", bytes: TestBytes.random(4096, seed: UInt64(10_000 + i))) }
            usleep(100_000)
            #expect(BatchBehindTests.lines(store.root).count == 0, "no line before its records are flushed")
            #expect(try !CacheStore.open(at: store.root).contains("n0"))
            gate.release()
            try session.flush()
            #expect(gate.calls == 2, "each batch's pack flush ran behind")
            #expect(BatchBehindTests.lines(store.root).count == WriteSession.groupLines + 500)
            let reader = try CacheStore.open(at: store.root)
            #expect(try reader.get("n999") == TestBytes.random(4096, seed: 999))
            #expect(try reader.get("m499") == TestBytes.random(4096, seed: 10_499))
            try session.close()
        }
    }

    @Test("full packs are sealed behind, before the lines that name their records; a failure seals none")
    func fullPacksSealedBehind() throws {
        for fails in [false, true] {
            try withTemporaryDirectory { dir in
                // 64 KiB packs: about 15 records of 4 KiB each, so a batch fills dozens.
                let (store, session, gate) = try BatchBehindTests.heldSession(
                    in: dir, packSize: 65536, failing: fails ? "flush behind failed (test)" : nil)
                for i in 0..<WriteSession.groupLines {
                    try session.set("p\(i)", bytes: TestBytes.random(4096, seed: UInt64(i)))
                }
                #expect(gate.waitEntered())
                let held = TestFiles.names(in: store.root + "/packs")
                #expect(held.filter { $0.hasSuffix(".pack") }.count > 30, "\(held.count) files")
                #expect(!held.contains { $0.hasSuffix(".idx") }, "no full pack sealed on the session's thread")
                #expect(BatchBehindTests.lines(store.root).count == 0)
                gate.release()
                if fails {
                    #expect(throws: CasketError.self) { try session.flush() }
                    let left = TestFiles.names(in: store.root + "/packs")
                    #expect(!left.contains { $0.hasSuffix(".idx") || $0.hasSuffix(".lease") }, "\(left)")
                    #expect(BatchBehindTests.lines(store.root).count == 0)
                    session.beforePackFlushBehind = nil
                    try session.close()
                    return
                }
                try session.flush()
                let packs = TestFiles.names(in: store.root + "/packs")
                let sealed = packs.filter { $0.hasSuffix(".idx") }.count
                #expect(sealed == packs.filter { $0.hasSuffix(".pack") }.count - 1, "all but the open one: \(packs)")
                let reader = try CacheStore.open(at: store.root)
                for i in stride(from: 0, to: WriteSession.groupLines, by: 37) {
                    #expect(try reader.get("p\(i)") == TestBytes.random(4096, seed: UInt64(i)))
                }
                try session.close()
                let fsck = try CLI.run(["fsck", "--store", store.root])
                #expect(fsck.status == 0, "\(fsck)")
            }
        }
    }

    @Test("close: the last lines, the seal line and the pack index all wait for the pack's flush")
    func closeWaitsForThePackFlush() throws {
        try withTemporaryDirectory { dir in
            let (store, session, gate) = try BatchBehindTests.heldSession(in: dir)
            for i in 0..<10 { try session.set("c\(i)", bytes: TestBytes.random(4096, seed: UInt64(i))) }
            let closer = Closer(session)
            Thread { closer.run() }.start()
            #expect(gate.waitEntered())
            usleep(100_000)
            #expect(BatchBehindTests.lines(store.root).count == 0, "neither the lines nor the seal line yet")
            let packs = TestFiles.names(in: store.root + "/packs")
            #expect(!packs.contains { $0.hasSuffix(".idx") }, "the seal waits for the flush: \(packs)")
            #expect(closer.done.wait(timeout: .now() + 0.05) == .timedOut, "close waits for it too")
            gate.release()
            #expect(closer.done.wait(timeout: .now() + 30) == .success)
            #expect(closer.outcome == "ok")
            let lines = BatchBehindTests.lines(store.root)
            #expect(lines.count == 11 && lines.last?.hasPrefix("{\"sealed\":true") == true, "\(lines.suffix(2))")
            #expect(TestFiles.names(in: store.root + "/packs").contains { $0.hasSuffix(".idx") })
            #expect(try CacheStore.open(at: store.root).get("c9") == TestBytes.random(4096, seed: 9))
        }
    }

    @Test("a failed pack flush behind loses its batch and the lines set since; the next call says so")
    func failedPackFlush() throws {
        try withTemporaryDirectory { dir in
            let (store, session, gate) = try BatchBehindTests.heldSession(
                in: dir, failing: "fdatasync of the pack failed (test)")
            for i in 0..<WriteSession.groupLines {
                try session.set("n\(i)", bytes: TestBytes.random(4096, seed: UInt64(i)))
            }
            #expect(gate.waitEntered())
            let failedPack = try #require(TestFiles.names(in: store.root + "/packs").first { $0.hasSuffix(".pack") })
            gate.release()
            for i in 0..<10 { try session.set("m\(i)", bytes: TestBytes.random(4096, seed: UInt64(10_000 + i))) }
            session.beforePackFlushBehind = nil
            #expect {
                try session.flush()
            } throws: { error in
                (error as? CasketError)?.code == .io && "\(error)".contains("fdatasync of the pack failed (test)")
            }
            #expect(BatchBehindTests.lines(store.root).count == 0, "neither the batch nor the lines set after it")
            let id = String(failedPack.dropLast(".pack".count))
            let after = TestFiles.names(in: store.root + "/packs")
            #expect(!after.contains(id + ".idx") && !after.contains(id + ".lease"), "left unsealed: \(after)")
            // The session goes on, in a new pack.
            for i in 0..<5 { try session.set("z\(i)", bytes: TestBytes.random(4096, seed: UInt64(20_000 + i))) }
            try session.close()
            let reader = try CacheStore.open(at: store.root)
            #expect(try reader.keys().sorted() == (0..<5).map { "z\($0)" })
            #expect(try reader.get("z4") == TestBytes.random(4096, seed: 20_004))
            #expect(reader.issues.isEmpty, "\(reader.issues)")
            #expect(TestFiles.names(in: store.root + "/packs").filter { $0.hasSuffix(".idx") }.count == 1)
        }
    }
}
