@_spi(Maintenance) public import Casket
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The garbage collector's lock: one collection at a time per store, across hosts, without `flock`.
///
/// The lock is the file `gc/lock`, holding the owner's host, pid, start time and a random token; its
/// mtime is the heartbeat, refreshed by a background thread while the lock is held. The protocol is
/// correct on NFS (docs/GC.md, "The lock"):
///
/// - **Take**: write the content to a unique file, `link` it to `gc/lock`, and count the unique file's
///   links: 2 means the lock is ours, even if the `link` reply was lost and reported `EEXIST`.
/// - **Stale**: a lock whose heartbeat (mtime, compared with the file system's now) is older than the TTL;
///   or, for a lock of this very host, one whose pid does not exist. A pid is never judged on another host.
/// - **Take over**: first create `gc/lock.takeover` the same exclusive way (one taker at a time; a
///   takeover file older than the TTL is a dead taker's and is removed), then check that `gc/lock` still
///   holds the token judged stale, remove it, and take the lock as above. A taker never moves or removes a
///   lock it has not judged stale itself, so two takers can never both end up holding it.
/// - **Lost**: the heartbeat thread checks that `gc/lock` still holds this owner's token; if not (taken
///   over after a long pause), ``isLost`` turns true and the collector stops before its next deletion.
///
/// Writers never look at the lock.
public final class GCLock: Sendable {
    /// What a lock file says about its owner.
    public struct Holder: Sendable, Equatable, CustomStringConvertible {
        /// The owner's sanitised host name.
        public var host: String
        /// The owner's pid on its host.
        public var pid: Int32
        /// When the owner took the lock (file-system time, nanoseconds since the epoch).
        public var start: Int64
        /// The owner's random token.
        public var token: String
        /// The lock file's mtime: the last heartbeat.
        public var heartbeat: Int64

        /// `pid 123 on node-b`.
        public var description: String { "pid \(pid) on \(host)" }

        func encoded() -> [UInt8] {
            Array(
                "{\"host\":\"\(host)\",\"pid\":\(pid),\"start\":\(start),\"token\":\"\(token)\"}\n".utf8)
        }

        static func parse(_ bytes: [UInt8], heartbeat: Int64) -> Holder? {
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                let host = object["host"] as? String, let pid = (object["pid"] as? NSNumber)?.int32Value,
                let token = object["token"] as? String
            else { return nil }
            let start = (object["start"] as? NSNumber)?.int64Value ?? 0
            return Holder(host: host, pid: pid, start: start, token: token, heartbeat: heartbeat)
        }
    }

    /// How long a lock whose heartbeat stopped is respected (default 5 minutes).
    public static let defaultTTL: Int64 = 300_000_000_000
    /// How often the heartbeat refreshes the lock (default 15 s).
    public static let defaultHeartbeat: Int64 = 15_000_000_000

    /// This owner's identity as written in the lock file.
    public let holder: Holder
    /// The lock that was taken over to get this one, if any.
    public let tookOver: Holder?
    let path: String
    let store: BlobStore
    let heartbeatInterval: Int64
    let stopping = Atomic<Bool>(false)
    let lost = Atomic<Bool>(false)
    let stopped = Atomic<Bool>(false)
    let released = Atomic<Bool>(false)

    private init(store: BlobStore, holder: Holder, tookOver: Holder?, heartbeatInterval: Int64) {
        self.store = store
        self.path = GCLock.lockPath(store)
        self.holder = holder
        self.tookOver = tookOver
        self.heartbeatInterval = heartbeatInterval
    }

    static func lockPath(_ store: BlobStore) -> String { store.gcDirectory + "/lock" }

    /// True once another collector has taken the lock over (this one paused for longer than the TTL):
    /// the owner must stop deleting.
    public var isLost: Bool { lost.load(ordering: .acquiring) }

    /// Reads the current lock file, if there is one.
    public static func current(_ store: BlobStore) -> Holder? {
        let path = lockPath(store)
        guard let status = StoreFiles.status(path), let bytes = try? StoreFiles.read(path, limit: 4096) else {
            return nil
        }
        return Holder.parse(bytes, heartbeat: status.mtimeNanoseconds)
    }

    /// Takes the lock, taking over a stale one, and starts the heartbeat.
    ///
    /// - Parameters:
    ///   - store: The store.
    ///   - ttl: How old a heartbeat must be for the lock to count as stale.
    ///   - heartbeatInterval: How often to refresh the lock while it is held.
    /// - Throws: ``CasketError/Code/busy`` naming the owner when another collector holds a fresh lock.
    public static func acquire(
        _ store: BlobStore, ttl: Int64 = defaultTTL, heartbeatInterval: Int64 = defaultHeartbeat
    ) throws(CasketError) -> GCLock {
        try StoreFiles.makeDirectory(store.gcDirectory)
        let path = lockPath(store)
        let token = StoreFiles.randomHex(bytes: 16)
        var tookOver: Holder? = nil
        for _ in 0..<10 {
            let now = try store.fileSystemNow()
            let me = Holder(host: StoreFiles.hostName, pid: StoreFiles.pid, start: now, token: token, heartbeat: now)
            if try create(path: path, holder: me) {
                let lock = GCLock(store: store, holder: me, tookOver: tookOver, heartbeatInterval: heartbeatInterval)
                lock.startHeartbeat()
                return lock
            }
            // Someone holds it: judge it.
            guard let status = StoreFiles.status(path) else { continue }  // released meanwhile
            let bytes = (try? StoreFiles.read(path, limit: 4096)) ?? []
            let other = Holder.parse(bytes, heartbeat: status.mtimeNanoseconds)
            let age = now - status.mtimeNanoseconds
            var stale = age > ttl
            if let other, other.host == StoreFiles.hostName, !StoreFiles.processExists(other.pid) { stale = true }
            guard stale else {
                let who = other.map { "\($0)" } ?? "an unreadable owner"
                throw CasketError(
                    .busy,
                    "another garbage collection holds '\(path)' (\(who), heartbeat \(max(0, age) / 1_000_000_000) s "
                        + "ago); it is respected until its heartbeat is older than \(GCDuration.format(ttl))",
                    path: path)
            }
            // Take it over under a second exclusive file, so that one taker at a time removes the stale lock:
            // a taker never moves or removes a lock it has not judged stale itself.
            let takeover = path + ".takeover"
            if try !StoreFiles.createByLink(takeover, me.encoded(), sync: false).created {
                if let busy = StoreFiles.status(takeover), now - busy.mtimeNanoseconds > ttl {
                    _ = StoreFiles.unlink(takeover)  // a taker that died mid-takeover
                    continue
                }
                throw CasketError(
                    .busy, "another garbage collection is taking over the stale lock '\(path)'", path: path)
            }
            defer { _ = StoreFiles.unlink(takeover) }
            let current = (try? StoreFiles.read(path, limit: 4096)).flatMap { Holder.parse($0, heartbeat: 0) }
            if current != nil || other != nil, current?.token != other?.token {
                // The lock changed hands since it was judged: judge again.
                continue
            }
            switch StoreFiles.unlink(path) {
            case .success, .failure(.noSuchFileOrDirectory): break
            case .failure(let errno):
                throw CasketError(.io, "cannot remove the stale lock '\(path)'", path: path, errno: errno)
            }
            tookOver = other
            if try create(path: path, holder: me) {
                let lock = GCLock(store: store, holder: me, tookOver: tookOver, heartbeatInterval: heartbeatInterval)
                lock.startHeartbeat()
                return lock
            }
        }
        throw CasketError(.busy, "could not take '\(path)': it kept changing hands", path: path)
    }

    /// Creates the lock file atomically: unique file, `link`, link count (correct when an NFS reply is lost).
    private static func create(path: String, holder: Holder) throws(CasketError) -> Bool {
        try StoreFiles.createByLink(path, holder.encoded(), sync: false).created
    }

    /// Whether `gc/lock` still holds this owner's token.
    public func isHeld() -> Bool {
        guard let bytes = try? StoreFiles.read(path, limit: 4096), let current = Holder.parse(bytes, heartbeat: 0)
        else { return false }
        return current.token == holder.token
    }

    private func startHeartbeat() {
        let thread = Thread { [self] in
            var lastGood = StoreFiles.wallClockNanoseconds()
            while !stopping.load(ordering: .acquiring) {
                var slept: Int64 = 0
                while slept < heartbeatInterval && !stopping.load(ordering: .acquiring) {
                    usleep(20_000)
                    slept += 20_000_000
                }
                if stopping.load(ordering: .acquiring) { break }
                // A lock moved aside by a racing taker is put back within moments: look a few times.
                var ours = false
                for attempt in 0..<3 {
                    if isHeld(), case .success = StoreFiles.touch(path) {
                        ours = true
                        break
                    }
                    if attempt < 2 { usleep(100_000) }
                }
                if ours {
                    lastGood = StoreFiles.wallClockNanoseconds()
                } else if !isHeld() || StoreFiles.wallClockNanoseconds() - lastGood > heartbeatInterval * 4 {
                    lost.store(true, ordering: .releasing)
                }
            }
            stopped.store(true, ordering: .releasing)
        }
        thread.name = "casket-gc-heartbeat"
        thread.start()
    }

    /// Stops the heartbeat and removes the lock if it is still this owner's.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        stopping.store(true, ordering: .releasing)
        while !stopped.load(ordering: .acquiring) { usleep(5_000) }
        if isHeld() { _ = StoreFiles.unlink(path) }
    }
}
