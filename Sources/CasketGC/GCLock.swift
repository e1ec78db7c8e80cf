@_spi(Maintenance) public import Casket

/// The garbage collector's lock: one collection at a time per store, across hosts, PID namespaces and
/// containers, without `flock`. It is the ``Lease`` `gc/lock` (docs/FORMAT.md, section 7; docs/GC.md,
/// "The lock"); this type adds only the policy: its name, a 5-minute TTL with a 15-second heartbeat,
/// and a refusal that names the holder.
///
/// A collector whose lock is lost (taken over after it paused for longer than the TTL) sees ``isLost``
/// and stops before its next removal. Writers never look at the lock.
public final class GCLock: Sendable {
    /// How long a lock whose heartbeat stopped is respected (default 5 minutes).
    public static let defaultTTL: Duration = .seconds(300)
    /// How often the heartbeat refreshes the lock (default 15 s).
    public static let defaultHeartbeat: Duration = .seconds(15)

    /// The lease behind the lock.
    public let lease: Lease

    private init(lease: Lease) { self.lease = lease }

    /// This owner's identity as written in the lock file.
    public var holder: LeaseRecord { lease.record }
    /// The stale lock removed to take this one, if any.
    public var tookOver: LeaseHolder? { lease.tookOver }
    /// True once another collector has taken the lock over: the owner must stop deleting.
    public var isLost: Bool { lease.isLost }

    static func lockPath(_ store: BlobStore) -> String { store.gcDirectory + "/lock" }

    /// Reads the current lock file, if there is one, judged with `ttl`.
    public static func current(_ store: BlobStore, ttl: Duration = defaultTTL) -> LeaseHolder? {
        guard let now = try? store.fileSystemNow() else { return nil }
        return try? LeaseHolder.observe(in: store, lockPath(store), now: now, ttl: ttl)
    }

    /// Takes the lock, taking over a stale one, and starts the heartbeat.
    ///
    /// - Parameters:
    ///   - store: The store.
    ///   - ttl: How old another collector's heartbeat must be for its lock to be stale; positive.
    ///   - heartbeatInterval: How often to refresh the lock while it is held; positive.
    /// - Throws: ``CasketError/Code/busy`` naming the owner when another collector holds a live lock or is
    ///   taking a stale one over; ``CasketError/Code/invalidArgument`` for a TTL that is not positive.
    public static func acquire(
        _ store: BlobStore, ttl: Duration = defaultTTL, heartbeatInterval: Duration = defaultHeartbeat
    ) throws(CasketError) -> GCLock {
        try store.files.makeDirectory(store.gcDirectory)
        let path = lockPath(store)
        switch try Lease.acquire(in: store, at: path, ttl: ttl, heartbeat: heartbeatInterval, sync: false) {
        case .acquired(let lease):
            return GCLock(lease: lease)
        case .busy(let other) where other.isStale:
            throw CasketError(
                .busy, "another garbage collection is taking over the stale lock '\(path)' (\(other))", path: path)
        case .busy(let other):
            let age = max(0, other.age.wholeNanoseconds) / 1_000_000_000
            throw CasketError(
                .busy,
                "another garbage collection holds '\(path)' (\(other), heartbeat \(age) s ago); it is respected "
                    + "until its heartbeat is older than \(GCDuration.format(ttl.wholeNanoseconds))",
                path: path)
        }
    }

    /// Whether `gc/lock` still holds this owner's token.
    public func isHeld() -> Bool { lease.isHeld() }

    /// Stops the heartbeat and removes the lock if it is still this owner's.
    public func release() { lease.release() }
}
