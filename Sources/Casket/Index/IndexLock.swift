import Foundation

/// The index lock, `gc/index.lock`: held by a compaction for its whole run and by garbage collection's
/// mark (and fsck's) while it reads `index/`, so that no compaction renames or removes an index file while
/// another compaction decides which tombstones to drop, or while a mark lists the folder
/// (docs/FORMAT.md 5.6, docs/GC.md).
///
/// A ``Lease`` (docs/FORMAT.md 7) whose record carries the holder's `purpose`; this type adds only the
/// waiting, the name and the messages.
final class IndexLock: Sendable {
    /// How long a lock whose heartbeat stopped is respected (default 5 minutes).
    static let defaultTTL: Int64 = 300_000_000_000
    static let fileName = "index.lock"

    let lease: Lease
    var path: String { lease.path }

    private init(lease: Lease) { self.lease = lease }

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
        let fields = JSONObject([("purpose", .string(purpose))])
        let ttl = Duration.nanoseconds(ttl)
        let heartbeat = max(ttl / 5, .milliseconds(20))
        let deadline = ContinuousClock.now + .nanoseconds(wait)
        var pause = Duration.milliseconds(10)
        while true {
            switch try Lease.acquire(in: folder, fileName, fields: fields, ttl: ttl, heartbeat: heartbeat, sync: false)
            {
            case .acquired(let lease): return IndexLock(lease: lease)
            case .busy(let holder):
                guard ContinuousClock.now < deadline else {
                    let what = holder.record?.fields["purpose"]?.stringValue ?? "work"
                    throw CasketError(
                        .busy,
                        "the index lock '\(folder.path(of: fileName))' is held by the \(what) of \(holder); "
                            + "try again when it is done",
                        path: folder.path(of: fileName))
                }
                Thread.sleep(forTimeInterval: Double(pause.wholeNanoseconds) / 1e9)
                pause = min(pause * 2, .milliseconds(200))
            }
        }
    }

    /// Throws unless the lock is still this owner's: call it before every rename or removal in `index/`.
    func check() throws(CasketError) {
        if lease.isLost || !lease.isHeld() {
            throw CasketError(
                .busy, "the index lock '\(path)' was taken over (this process paused longer than its TTL); stopping",
                path: path)
        }
    }

    /// Stops the heartbeat and removes the lock if it is still this owner's. Idempotent.
    func release() { lease.release() }
}
