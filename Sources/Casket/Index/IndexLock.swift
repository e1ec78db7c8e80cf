import Foundation
import Synchronization

/// The index lock, `gc/index.lock`: held by a compaction for its whole run and by garbage collection's
/// mark (and fsck's) while it reads `index/`, so that no compaction renames or removes an index file while
/// another compaction decides which tombstones to drop, or while a mark lists the folder
/// (docs/FORMAT.md 5.6, docs/GC.md).
///
/// The protocol is the GC lock's (docs/GC.md, "The lock"): the content `{"host","pid","pidns","start",
/// "token","purpose"}` is linked into place from a unique file (correct on NFS), the mtime is a heartbeat refreshed
/// by a thread, a lock whose heartbeat is older than the TTL, or of this host and PID namespace with a
/// dead pid, is stale
/// and taken over under `gc/index.lock.takeover`. Callers go through ``acquire(_:purpose:ttl:wait:)``,
/// ``check()`` and ``release()`` only, so that the lock can move to the store's common lease type.
final class IndexLock: Sendable {
    /// How long a lock whose heartbeat stopped is respected (default 5 minutes).
    static let defaultTTL: Int64 = 300_000_000_000
    static let fileName = "index.lock"

    let path: String
    let folder: Directory
    let token: String
    private let interval: Double
    private let state = Mutex<State>(State())
    private let wakeup = NSCondition()

    private struct State {
        var released = false
        var lost = false
        var stopped = false
    }

    private init(folder: Directory, token: String, ttl: Int64) {
        self.folder = folder
        self.path = folder.path(of: IndexLock.fileName)
        self.token = token
        self.interval = max(Double(ttl) / 5e9, 0.02)
        let thread = Thread { [self] in heartbeatLoop() }
        thread.name = "casket-index-lock-heartbeat"
        thread.start()
    }

    deinit { release() }

    /// Takes the lock, waiting up to `wait` nanoseconds for its holder to release it or to go stale.
    ///
    /// - Parameter purpose: `compaction` or `mark`, written in the lock for a person reading it.
    /// - Throws: ``CasketError/Code/busy`` naming the holder when the wait ends.
    static func acquire(_ store: BlobStore, purpose: String, ttl: Int64, wait: Int64) throws(CasketError)
        -> IndexLock
    {
        // gc/ and the lock are reached through the store's folders: a link planted there is never followed.
        let folder = try store.directories.folder(.gc, create: true)
        let path = folder.path(of: fileName)
        let token = HostIdentity.randomHex(bytes: 16)
        let deadline = system_wallClockNanoseconds() + wait
        var pause: UInt32 = 10_000
        while true {
            let now = try store.fileSystemNow()
            let mine = Array(
                ("{\"host\":\"\(HostIdentity.host)\",\"pid\":\(HostIdentity.pid),\"pidns\":\"\(pidNamespace)\","
                    + "\"start\":\(now),\"token\":\"\(token)\",\"purpose\":\"\(purpose)\"}\n").utf8)
            if try folder.createByLink(fileName, mine, sync: false).created {
                return IndexLock(folder: folder, token: token, ttl: ttl)
            }
            let holder = read(folder)
            if let holder, now - holder.heartbeat > ttl || holder.isDeadHere {
                try takeOver(folder, judged: holder, now: now, ttl: ttl)
                continue
            }
            guard system_wallClockNanoseconds() < deadline else {
                let who = holder.map { "\($0.purpose) of pid \($0.pid) on \($0.host)" } ?? "another process"
                throw CasketError(
                    .busy, "the index lock '\(path)' is held by \(who); try again when it is done", path: path)
            }
            usleep(pause)
            pause = min(pause * 2, 200_000)
        }
    }

    /// Removes a lock judged stale, one taker at a time, and only if it still holds the token judged.
    private static func takeOver(_ folder: Directory, judged: Holder, now: Int64, ttl: Int64) throws(CasketError) {
        let takeover = fileName + ".takeover"
        guard try folder.createByLink(takeover, Array(judged.token.utf8), sync: false).created else {
            if case .success(let busy) = folder.status(takeover), now - busy.mtimeNanoseconds > ttl {
                _ = folder.remove(takeover)
            }
            return
        }
        defer { _ = folder.remove(takeover) }
        guard read(folder)?.token == judged.token else { return }
        _ = folder.remove(fileName)
    }

    struct Holder {
        var host: String
        var pid: Int32
        var pidNamespace: String
        var token: String
        var purpose: String
        var heartbeat: Int64

        /// A pid is judged only in the PID namespace it belongs to: containers on one node may share a
        /// host name, and a pid of another namespace that looks dead here proves nothing.
        var isDeadHere: Bool {
            host == HostIdentity.host && !pidNamespace.isEmpty && pidNamespace == IndexLock.pidNamespace
                && !StoreFiles.processExists(pid)
        }
    }

    /// This process's PID namespace (`pid:[4026531836]`), empty where there is no `/proc`.
    static var pidNamespace: String { HostIdentity.pidNamespace }

    static func read(_ folder: Directory) -> Holder? {
        guard case .success(let st) = folder.status(fileName),
            let bytes = try? folder.readSmallFile(fileName, limit: 4096),
            let object = try? JSONParser.parse(bytes), let host = object["host"]?.stringValue,
            let pid = object["pid"]?.intValue, let token = object["token"]?.stringValue
        else { return nil }
        return Holder(
            host: host, pid: Int32(truncatingIfNeeded: pid), pidNamespace: object["pidns"]?.stringValue ?? "",
            token: token,
            purpose: object["purpose"]?.stringValue ?? "?", heartbeat: st.mtimeNanoseconds)
    }

    /// Whether the lock file still holds this owner's token.
    private var isHeld: Bool { IndexLock.read(folder)?.token == token }

    /// Throws unless the lock is still this owner's: call it before every rename or removal in `index/`.
    func check() throws(CasketError) {
        if state.withLock({ $0.lost }) || !isHeld {
            state.withLock { $0.lost = true }
            throw CasketError(
                .busy, "the index lock '\(path)' was taken over (this process paused longer than its TTL); stopping",
                path: path)
        }
    }

    private func heartbeatLoop() {
        while true {
            // The flag is read under the condition's lock, so a release signalled before the wait is not lost.
            wakeup.lock()
            if !state.withLock({ $0.released }) { _ = wakeup.wait(until: Date(timeIntervalSinceNow: interval)) }
            wakeup.unlock()
            if state.withLock({ $0.released }) { break }
            if !isHeld || folder.touch(IndexLock.fileName).isFailure { state.withLock { $0.lost = true } }
        }
        state.withLock { $0.stopped = true }
    }

    /// Stops the heartbeat and removes the lock if it is still this owner's. Idempotent.
    func release() {
        wakeup.lock()
        let first = state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        wakeup.signal()
        wakeup.unlock()
        guard first else { return }
        while !state.withLock({ $0.stopped }) { usleep(1_000) }
        if isHeld { _ = folder.remove(IndexLock.fileName) }
    }
}

extension Result {
    fileprivate var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}
